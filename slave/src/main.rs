//! `mesos-agent`: runs tasks offered by a Mesos master in isolated containers.

use std::process::ExitCode;

use clap::error::ErrorKind;
use mesos_slave::flags::Flags;

fn main() -> ExitCode {
    let flags = match Flags::parse_from_args(std::env::args_os()) {
        Ok(flags) => flags,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            // One clear line naming the flag; exit 1 like Mesos (clap's default is 2).
            // clap spreads some errors over lines ("required arguments were
            // not provided:\n  --work_dir <WORK_DIR>"); keep the part before
            // the usage text, on one line.
            let message = error.render().to_string();
            let summary: Vec<&str> = message
                .lines()
                .take_while(|line| !line.starts_with("Usage:"))
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
                .filter(|line| !line.starts_with("For more information"))
                .collect();
            eprintln!("{}", summary.join(" "));
            eprintln!("See 'mesos-agent --help'.");
            return ExitCode::from(1);
        }
    };
    if let Err(error) = flags.validate() {
        eprintln!("error: {error}");
        return ExitCode::from(1);
    }
    mesos_timeline::init_tracing("agent", "info");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let agent = mesos_slave::agent::start(flags).await?;
    eprintln!("mesos-agent listening on {}", agent.address);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; exiting"),
        _ = terminate.recv() => tracing::info!("terminated; exiting"),
        () = agent.slave.terminated() => tracing::info!("agent shut down"),
    }
    Ok(())
}
