//! The log subscriber of the binaries (`cxstream`, `cxstream-bench`):
//! filtered by `CXSTREAM_LOG` (an `EnvFilter`; default info, librdkafka
//! warnings only), written to stderr, coloured on a terminal.

/// Installs the subscriber (once; later calls do nothing).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CXSTREAM_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn")
    });
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
