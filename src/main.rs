use std::process::ExitCode;

fn main() -> ExitCode {
    cxstream::cli::main()
}
