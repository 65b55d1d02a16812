//! Fake hosts for unit tests: a temporary directory standing in for `/sys/fs/cgroup`,
//! with a mount table and `/proc/self/cgroup` text pointing into it.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::{CgroupFs, CgroupsConfig, HostInfo, Isolation, Isolator};

pub const MB: u64 = 1024 * 1024;

/// A fake cgroup hierarchy in a temporary directory.
pub struct FakeHost {
    pub dir: TempDir,
    pub host: HostInfo,
}

impl FakeHost {
    /// A unified host whose root lists `controllers`; we live in `own` ("/" = root).
    pub fn unified(controllers: &str, own: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().to_owned();
        fs::write(mount.join("cgroup.controllers"), controllers).unwrap();
        let mountinfo = format!(
            "26 25 0:24 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
            mount.display()
        );
        FakeHost {
            dir,
            host: HostInfo {
                mountinfo,
                self_cgroup: format!("0::{own}\n"),
            },
        }
    }

    /// The CI host's shape: separate v1 cpu and cpuacct, memory, pids, freezer; our
    /// memory cgroup is `/agent.slice`; cgroup2 at `unified` listing `v2_controllers`.
    pub fn hybrid(v2_controllers: &str) -> Self {
        let mut host = Self::legacy_with(&["cpu", "cpuacct", "memory", "pids", "freezer"]);
        let unified = host.path().join("unified");
        fs::create_dir(&unified).unwrap();
        fs::write(unified.join("cgroup.controllers"), v2_controllers).unwrap();
        host.host.mountinfo.push_str(&format!(
            "41 31 0:38 / {} rw,relatime - cgroup2 cgroup2 rw\n",
            unified.display()
        ));
        host.host.self_cgroup.push_str("0::/\n");
        host
    }

    /// v1 only, one hierarchy per entry of `hierarchies` (`cpu,cpuacct` co-mounts).
    pub fn legacy_with(hierarchies: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut mountinfo = String::new();
        let mut self_cgroup = String::new();
        for (i, controllers) in hierarchies.iter().enumerate() {
            let mount = dir.path().join(controllers);
            fs::create_dir(&mount).unwrap();
            mountinfo.push_str(&format!(
                "{} 31 0:{} / {} rw,relatime - cgroup cgroup rw,{controllers}\n",
                32 + i,
                29 + i,
                mount.display()
            ));
            let own = if *controllers == "memory" {
                "/agent.slice"
            } else {
                "/"
            };
            self_cgroup.push_str(&format!("{}:{controllers}:{own}\n", i + 1));
        }
        FakeHost {
            dir,
            host: HostInfo {
                mountinfo,
                self_cgroup,
            },
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A config whose hierarchy is the fake one.
    pub fn config(&self) -> CgroupsConfig {
        CgroupsConfig {
            hierarchy: self.path().to_owned(),
            ..CgroupsConfig::default()
        }
    }

    pub fn isolator(&self, config: CgroupsConfig, isolation: &str) -> Isolator {
        self.try_isolator(config, isolation).unwrap()
    }

    pub fn try_isolator(
        &self,
        config: CgroupsConfig,
        isolation: &str,
    ) -> Result<Isolator, crate::IsolatorError> {
        let isolation: Isolation = isolation.parse().unwrap();
        Isolator::with_host(config, isolation, &self.host, CgroupFs::fake())
    }
}

/// The trimmed content of a file.
pub fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// `base` joined with each component of `rel`.
pub fn at(base: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(base.to_owned(), |p, c| p.join(c))
}
