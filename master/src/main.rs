//! `mesos-master`: parses Mesos-style flags and runs the master.

use clap::Parser;
use mesos_master::{Flags, MESOS_VERSION};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = match Flags::try_parse() {
        Ok(flags) => flags,
        Err(error) => {
            use clap::error::ErrorKind;
            let code = match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                // Mesos exits 1 on a bad flag (clap would use 2).
                _ => 1,
            };
            let _ = error.print();
            std::process::exit(code);
        }
    };
    if flags.version {
        println!("mesos {MESOS_VERSION}");
        return Ok(());
    }
    let level = match flags.logging_level.as_str() {
        "WARNING" => "warn",
        "ERROR" => "error",
        _ => "info",
    };
    mesos_timeline::init_tracing("master", level);
    let mut handle = match mesos_master::start(flags).await {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("Failed to start the master: {error}");
            std::process::exit(1);
        }
    };
    tracing::info!(address = %handle.address, upid = %handle.upid, "listening");
    let stopped = tokio::select! {
        stopped = handle.wait() => Some(stopped),
        _ = tokio::signal::ctrl_c() => None,
    };
    handle.shutdown().await;
    match stopped {
        None => tracing::info!("interrupted, shutting down"),
        Some(Ok(())) => tracing::error!("HTTP server stopped"),
        Some(Err(error)) => {
            // Mesos aborts when the registry fails: what it acknowledged
            // might not survive, so it must not go on.
            eprintln!("The master stopped: {error}");
            std::process::exit(1);
        }
    }
    Ok(())
}
