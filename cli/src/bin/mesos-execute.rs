//! `mesos-execute`: runs one command as a Mesos task. See
//! `mesos_cli::execute` and `mesos-execute --help` (which lists the exit
//! codes).

use std::process::ExitCode;

use clap::Parser as _;
use mesos_cli::execute::{self, flags::Flags};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // clap prints bad flags with the flag's name and exits with 2.
    let flags = Flags::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // The driver's retry warnings would repeat what mesos-execute
            // prints itself; RUST_LOG shows them.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,mesos_scheduler=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    ExitCode::from(execute::run(flags).await.code())
}
