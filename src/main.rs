use std::process::ExitCode;

/// mimalloc instead of glibc malloc: the pipeline allocates many short-lived
/// small objects per event (JSON values, strings); see BENCHMARKS.md. The
/// `system-alloc` feature keeps the system allocator, for heap profilers
/// that hook malloc (`heaptrack`, see BENCHMARKS.md).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cxstream::cli::main()
}
