//! What machine the numbers come from: kernel, cgroup layout, CPU, memory and
//! load. Benchmarks on a shared 2-core host are only comparable with this
//! next to them.

use std::path::Path;

use serde::Serialize;

/// The host description written at the top of the report and into the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// `uname -n`.
    pub hostname: String,
    /// `uname -r`.
    pub kernel: String,
    /// `PRETTY_NAME` from `/etc/os-release`.
    pub os: String,
    /// `unified`, `hybrid` or `legacy` (the isolator's detection), or the error.
    pub cgroup_layout: String,
    /// Controllers of the cgroup2 tree (`cgroup.controllers`), if mounted.
    pub cgroup2_controllers: Option<String>,
    /// This process's `/proc/self/cgroup`, one entry per hierarchy.
    pub own_cgroups: Vec<String>,
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// `MemTotal` in MiB.
    pub memory_mib: u64,
    /// The 1, 5 and 15 minute load averages when the run started.
    pub loadavg: String,
    /// Whether the benchmark binary was built with optimisations.
    pub build_profile: &'static str,
    /// Effective uid (most suites need root).
    pub uid: u32,
}

impl Host {
    /// Reads the description of this host; unreadable fields say `unknown`.
    pub fn describe() -> Self {
        let uname = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uname.as_ref().map_or_else(
                || "unknown".to_owned(),
                |u| f(u).to_string_lossy().into_owned(),
            )
        };
        Host {
            hostname: field(|u| u.nodename()),
            kernel: field(|u| u.release()),
            os: os_release(&read("/etc/os-release")),
            cgroup_layout: cgroup_layout(),
            cgroup2_controllers: cgroup2_controllers(),
            own_cgroups: read("/proc/self/cgroup")
                .lines()
                .map(str::to_owned)
                .collect(),
            cpu_model: cpu_model(&read("/proc/cpuinfo")),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib: mem_total_kib(&read("/proc/meminfo")) / 1024,
            loadavg: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            build_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            uid: nix::unistd::geteuid().as_raw(),
        }
    }

    /// Whether cgroup v1 controllers carry the limits (hybrid or legacy host).
    pub fn is_hybrid(&self) -> bool {
        self.cgroup_layout == "hybrid"
    }

    /// The header lines of the text report.
    pub fn summary_lines(&self) -> Vec<String> {
        vec![
            format!(
                "host     {} — {}, kernel {}",
                self.hostname, self.os, self.kernel
            ),
            format!(
                "cpu      {} × {} · memory {} MiB · load {}",
                self.cores, self.cpu_model, self.memory_mib, self.loadavg
            ),
            format!(
                "cgroups  {} layout (cgroup2 controllers: {}) · build {}",
                self.cgroup_layout,
                self.cgroup2_controllers.as_deref().unwrap_or("not mounted"),
                self.build_profile
            ),
        ]
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn cgroup_layout() -> String {
    let host = match mesos_isolator::HostInfo::read() {
        Ok(host) => host,
        Err(e) => return format!("unknown ({e})"),
    };
    match mesos_isolator::detect_layout(&host.mountinfo, Path::new("/sys/fs/cgroup")) {
        Ok(layout) => layout.to_string(),
        Err(e) => format!("unknown ({e})"),
    }
}

/// The controllers of the cgroup2 tree: at `/sys/fs/cgroup` on unified
/// hosts, `/sys/fs/cgroup/unified` on hybrid ones. An empty list is `""`.
fn cgroup2_controllers() -> Option<String> {
    [
        "/sys/fs/cgroup/cgroup.controllers",
        "/sys/fs/cgroup/unified/cgroup.controllers",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .map(|s| s.trim().to_owned())
}

fn os_release(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map_or_else(
            || "unknown OS".to_owned(),
            |v| v.trim_matches('"').to_owned(),
        )
}

fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown CPU".to_owned(), |(_, v)| v.trim().to_owned())
}

fn mem_total_kib(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo), "AMD EPYC 7B13");
        assert_eq!(cpu_model(""), "unknown CPU");
        assert_eq!(
            mem_total_kib("MemTotal:       24634540 kB\nMemFree: 1 kB\n"),
            24_634_540
        );
        let os = "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(os_release(os), "Debian GNU/Linux 12 (bookworm)");
    }

    #[test]
    fn describes_this_host() {
        let host = Host::describe();
        assert!(host.cores >= 1);
        assert!(!host.kernel.is_empty());
        assert!(
            ["unified", "hybrid", "legacy"].contains(&host.cgroup_layout.as_str())
                || host.cgroup_layout.starts_with("unknown")
        );
    }
}
