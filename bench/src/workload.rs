//! What the benchmark's child processes run: `mesos-bench __spin` (a busy
//! loop) and `mesos-bench __alloc` (touch memory up to a target). They are
//! hidden subcommands of the benchmark binary itself, so the suites depend on
//! no other program and the same binary works inside a task's container.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::clock::monotonic_ns;

/// Memory is touched in steps of this many bytes.
const CHUNK: usize = 1 << 20;

/// Options of `__spin`.
#[derive(Debug, Clone, Args)]
pub struct SpinArgs {
    /// Wait for one byte on stdin before spinning (so every spinner of a
    /// scenario starts at once, after it was placed in its cgroup).
    #[arg(long)]
    pub wait_go: bool,
}

/// Burns CPU until killed.
pub fn spin(args: &SpinArgs) -> ! {
    if args.wait_go {
        wait_go();
    }
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// Options of `__alloc`.
#[derive(Debug, Clone, Args)]
pub struct AllocArgs {
    /// How much memory to touch, MiB.
    #[arg(long, required_unless_present = "limit_factor")]
    pub mb: Option<u64>,
    /// Touch this multiple of the memory limit of the cgroup we run in
    /// (the whole container's limit, which for a command task includes the
    /// executor's allowance), instead of `--mb`.
    #[arg(long, conflicts_with = "mb")]
    pub limit_factor: Option<f64>,
    /// Then hold it this long before exiting 0.
    #[arg(long, default_value_t = 0.0)]
    pub hold_secs: f64,
    /// Wait for one byte on stdin first.
    #[arg(long)]
    pub wait_go: bool,
    /// Append each step's `CLOCK_MONOTONIC` stamp to this file (else to stdout).
    #[arg(long)]
    pub stamp_file: Option<PathBuf>,
}

/// Touches `mb` MiB one chunk at a time, writing `step <bytes> <ns>` after
/// each: the last line written before an OOM kill marks the breach (within
/// one chunk, about 0.1 ms of `memset`). Prints `holding` when done.
pub fn alloc(args: &AllocArgs) -> std::io::Result<()> {
    if args.wait_go {
        wait_go();
    }
    let mut out: Box<dyn Write> = match &args.stamp_file {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let target_mb = match (args.mb, args.limit_factor) {
        (Some(mb), _) => mb,
        (None, Some(factor)) => {
            let limit = own_memory_limit().ok_or_else(|| {
                std::io::Error::other(
                    "--limit-factor: cannot read this process's memory cgroup limit",
                )
            })?;
            writeln!(out, "limit {limit} {}", monotonic_ns())?;
            ((limit as f64 * factor) / CHUNK as f64).round() as u64
        }
        (None, None) => return Err(std::io::Error::other("give --mb or --limit-factor")),
    };
    writeln!(out, "target {} {}", target_mb << 20, monotonic_ns())?;
    writeln!(out, "start 0 {}", monotonic_ns())?;
    out.flush()?;
    let chunks = usize::try_from(target_mb).unwrap_or(usize::MAX);
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(chunks);
    for i in 0..chunks {
        // A non-zero fill writes every page (zeroed allocations could stay
        // mapped to the shared zero page and never be charged).
        held.push(vec![0x5a; CHUNK]);
        writeln!(out, "step {} {}", (i + 1) * CHUNK, monotonic_ns())?;
        out.flush()?;
    }
    writeln!(out, "holding {} {}", chunks * CHUNK, monotonic_ns())?;
    out.flush()?;
    std::thread::sleep(Duration::from_secs_f64(args.hold_secs.max(0.0)));
    std::hint::black_box(&held);
    Ok(())
}

/// The hard memory limit of the cgroup this process is in: v1
/// `memory.limit_in_bytes` of its memory cgroup, else v2 `memory.max`.
/// `None` when unlimited or unreadable.
pub fn own_memory_limit() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut candidates = Vec::new();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            candidates.push(
                PathBuf::from("/sys/fs/cgroup/memory")
                    .join(path)
                    .join("memory.limit_in_bytes"),
            );
        } else if controllers.is_empty() {
            candidates.push(
                PathBuf::from("/sys/fs/cgroup")
                    .join(path)
                    .join("memory.max"),
            );
        }
    }
    candidates
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|value| value.trim().parse::<u64>().ok())
        // v1 reports "unlimited" as a huge page-aligned number.
        .find(|&limit| limit < (1 << 62))
}

/// The `target` (bytes to touch) and `limit` (the cgroup's limit, with
/// `--limit-factor`) lines of `__alloc` output.
pub fn target_and_limit(output: &str) -> (Option<u64>, Option<u64>) {
    let value = |kind: &str| {
        output.lines().find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(kind))
                .then(|| parts.next()?.parse().ok())
                .flatten()
        })
    };
    (value("target"), value("limit"))
}

/// The last `step`/`start` stamp in the output of `__alloc`, and whether it
/// reached `holding`.
pub fn last_stamp(output: &str) -> Option<(u64, bool)> {
    let mut last = None;
    let mut holding = false;
    for line in output.lines() {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(_bytes), Some(ns)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(ns) = ns.parse::<u64>() else { continue };
        match kind {
            "start" | "step" => last = Some(ns),
            "holding" => holding = true,
            _ => {}
        }
    }
    last.map(|ns| (ns, holding))
}

fn wait_go() {
    let mut byte = [0u8; 1];
    let _ = std::io::stdin().read(&mut byte);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_stamp_is_the_last_step_before_the_kill() {
        let killed = "start 0 100\nstep 1048576 200\nstep 2097152 300\nstep 31";
        assert_eq!(last_stamp(killed), Some((300, false)));
        let done = "start 0 100\nstep 1048576 200\nholding 1048576 250\n";
        assert_eq!(last_stamp(done), Some((200, true)));
        assert_eq!(last_stamp(""), None);
    }

    #[test]
    fn reads_target_and_limit_lines() {
        let out = "limit 167772160 1\ntarget 184549376 2\nstart 0 3\n";
        assert_eq!(
            target_and_limit(out),
            (Some(184_549_376), Some(167_772_160))
        );
        assert_eq!(target_and_limit("start 0 1\n"), (None, None));
    }

    #[test]
    fn own_memory_limit_is_none_or_plausible() {
        // The test shell may or may not sit in a limited memory cgroup.
        if let Some(limit) = own_memory_limit() {
            assert!(limit >= 4096, "{limit}");
        }
    }
}
