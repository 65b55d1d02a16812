//! `mesos-bench`: see the crate documentation and `mesos-bench --help`.

use std::process::ExitCode;

use clap::Parser;
use mesos_bench::cli::{Cli, Command};
use mesos_bench::workload;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The child workloads run before anything else starts (no runtime, no
    // logging): they must stay small and predictable.
    match &cli.command {
        Command::Spin(args) => workload::spin(args),
        Command::Alloc(args) => {
            return match workload::alloc(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mesos-bench __alloc: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,mesos_scheduler=error".into()),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mesos-bench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(mesos_bench::cli::run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("mesos-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
