//! `mesos-local`: a master and agents on loopback run a sample workload end
//! to end, then each task's timeline through the eight seed steps is printed.

use std::process::ExitCode;

use clap::Parser;
use mesos_cli::local::{self, Flags};
use mesos_timeline::Timeline;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    // The SDK's seed-step events (3, 4, 5) go to the timeline whatever
    // RUST_LOG says; only the console output follows RUST_LOG.
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")));
    tracing_subscriber::registry()
        .with(console)
        .with(Timeline::global().layer("scheduler"))
        .init();
    match local::run(flags).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("mesos-local: {e}");
            ExitCode::from(2)
        }
    }
}
