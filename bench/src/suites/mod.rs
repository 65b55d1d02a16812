//! The benchmark suites, one module each, and what they share.

pub mod allocator;
pub mod cpu;
pub mod e2e;
pub mod launch;
pub mod memory;
pub mod overhead;

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::{ClusterConfig, LocalCluster};
use crate::framework::BenchFramework;
use crate::host::Host;

/// How long a fresh cluster gets to make its first offer.
const FIRST_OFFER_TIMEOUT: Duration = Duration::from_secs(30);

/// What every suite may need to know about the run.
#[derive(Debug, Clone)]
pub struct Context {
    /// Where `mesos-master`, `mesos-agent`, `mesos-executor` and
    /// `mesos-containerizer` are (next to `mesos-bench` by default).
    pub bin_dir: PathBuf,
    /// This binary, for the `__spin` / `__alloc` child workloads.
    pub self_exe: PathBuf,
    /// `--quick`.
    pub quick: bool,
    /// The host description.
    pub host: Host,
}

impl Context {
    /// Why a suite that needs root cannot run, if it cannot.
    pub fn needs_root(&self) -> Option<String> {
        (self.host.uid != 0).then(|| "needs root (cgroups and namespaces)".to_owned())
    }

    /// The issue's local cluster.
    pub fn cluster_config(&self) -> ClusterConfig {
        ClusterConfig {
            name: "mesos-bench".to_owned(),
            ..ClusterConfig::new(&self.bin_dir)
        }
    }

    /// Why a suite that needs the local cluster cannot run, if it cannot.
    pub fn needs_cluster(&self) -> Option<String> {
        if let Some(why) = self.needs_root() {
            return Some(why);
        }
        let missing = self.cluster_config().missing_binaries();
        (!missing.is_empty()).then(|| {
            format!(
                "needs {} in {} (cargo build -p mesos-master -p mesos-slave -p mesos-executor -p mesos-containerizer, or --bin-dir)",
                missing.join(", "),
                self.bin_dir.display()
            )
        })
    }

    /// The `mesos-bench` command line a task runs to execute a workload.
    pub fn self_command(&self, args: &[&str]) -> String {
        let mut command = shell_quote(&self.self_exe.display().to_string());
        for arg in args {
            command.push(' ');
            command.push_str(&shell_quote(arg));
        }
        command
    }
}

/// A local cluster with the benchmark framework subscribed and offered the
/// agent's resources: the starting point of every cluster suite.
#[derive(Debug)]
pub struct Session {
    /// The master and agent.
    pub cluster: LocalCluster,
    /// The framework.
    pub framework: BenchFramework,
}

impl Session {
    /// Starts the cluster and the framework and waits for the first offer.
    /// On failure everything started is stopped and the error carries the
    /// processes' last log lines.
    pub async fn start(config: &ClusterConfig, name: &str) -> Result<Self, String> {
        let cluster = LocalCluster::start(config)
            .await
            .map_err(|e| e.to_string())?;
        let framework = match BenchFramework::start(&cluster.master_addr(), name) {
            Ok(framework) => framework,
            Err(e) => {
                let message = format!("{e}\n{}", cluster.log_tails());
                let _ = cluster.stop().await;
                return Err(message);
            }
        };
        let mut session = Session { cluster, framework };
        if let Err(e) = session
            .framework
            .wait_first_offer(FIRST_OFFER_TIMEOUT)
            .await
        {
            let message = format!("{e}\n{}", session.cluster.log_tails());
            session.stop().await;
            return Err(message);
        }
        Ok(session)
    }

    /// `error` with the cluster's log tails appended, for a failed suite.
    pub fn explain(&self, error: impl std::fmt::Display) -> String {
        format!("{error}\n{}", self.cluster.log_tails())
    }

    /// Tears the framework down and stops the cluster; returns a note if the
    /// clean-up failed.
    pub async fn stop(self) -> Option<String> {
        self.framework.stop().await;
        self.cluster.stop().await.err().map(|e| e.to_string())
    }
}

/// Single-quotes `s` for `sh -c` unless it is plainly safe.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+".contains(c));
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
