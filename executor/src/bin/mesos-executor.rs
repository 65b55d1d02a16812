//! `mesos-executor`: the Mesos command executor. The agent starts it as
//! `<launcher_dir>/mesos-executor --launcher_dir=<launcher_dir>` with the
//! `MESOS_*` executor environment; see [`mesos_executor::command`].

use std::process::ExitCode;

use anyhow::Context as _;
use mesos_executor::command::{self, Args, Flags, USAGE};
use mesos_executor::Config;

fn main() -> ExitCode {
    // The sandbox's stderr file is the executor's log, as with Mesos.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mesos-executor: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(Args::Run(flags)) => *flags,
        Ok(Args::Help) => {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) => anyhow::bail!("{error}\n\n{USAGE}"),
    };
    let config = Config::from_env()?;
    let outcome = command::run(flags, config).context("the command executor failed")?;
    Ok(ExitCode::from(outcome.exit_code()))
}
