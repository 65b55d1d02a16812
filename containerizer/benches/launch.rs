//! `cargo bench -p mesos-containerizer`: launch-to-exec latency of this
//! containerizer against `runc run` and `crun run` (see
//! `mesos_containerizer::bench`). Needs root. `MESOS_BENCH_RUNS` (default
//! 200) and `MESOS_BENCH_WARMUP` (default 10) set the run counts. Run by
//! `cargo test --all-targets` (without `--bench`) it does two runs only.

use std::path::{Path, PathBuf};

use mesos_containerizer::bench::{launch_suite, SuiteOptions};
use mesos_containerizer::image::ImageProvider;
use mesos_containerizer::{Containerizer, ContainerizerConfig, Namespaces};
use mesos_isolator::{CgroupsConfig, Isolation, Isolator};

fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| anyhow::anyhow!("{name} must be a number, got {value:?}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        // `cargo bench -- --list` and test discovery: nothing to list.
        return Ok(());
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not,
    // and then a two-run smoke test is enough.
    let smoke = !args.iter().any(|a| a == "--bench");
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("the launch benchmark needs root (cgroups, namespaces); skipped");
        return Ok(());
    }
    let runs = if smoke {
        2
    } else {
        env_count("MESOS_BENCH_RUNS", 200)?
    };
    let warmup = if smoke {
        0
    } else {
        env_count("MESOS_BENCH_WARMUP", 10)?
    };
    let scratch = tempfile::tempdir()?;
    let launcher_dir: PathBuf = Path::new(env!("CARGO_BIN_EXE_mesos-containerizer"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("helper binary has no directory"))?
        .to_owned();
    let cgroups = CgroupsConfig {
        root: format!("mesos-bench-{}", std::process::id()),
        ..CgroupsConfig::default()
    };
    let isolation: Isolation =
        "cgroups/cpu,cgroups/mem,filesystem/linux,namespaces/pid,namespaces/ipc".parse()?;
    let isolator = Isolator::new(cgroups, isolation)?;
    let store = scratch.path().join("store");
    let mut config = ContainerizerConfig::new(
        scratch.path().join("work"),
        scratch.path().join("run"),
        launcher_dir,
        isolator,
    );
    config.image_providers = vec![ImageProvider::Oci];
    config.oci_store_dir = Some(store.clone());
    config.namespaces = Namespaces::isolated();
    let containerizer = Containerizer::new(config)?;

    let busybox = Path::new("/bin/busybox");
    let options = SuiteOptions {
        runs,
        warmup,
        busybox: busybox.is_file().then(|| busybox.to_owned()),
        runtimes: vec!["runc".into(), "crun".into()],
        scratch: scratch.path().to_owned(),
    };
    println!("launching /bin/true: {runs} runs after {warmup} warm-up runs, round-robin");
    let report = launch_suite(&containerizer, &store, &options).await;
    println!("{}", report.render());
    containerizer.isolator().destroy_all().await?;
    Ok(())
}
