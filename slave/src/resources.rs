//! The agent's total resources: `--resources` plus detection of whatever it
//! leaves out, with Mesos's rules (src/slave/containerizer/containerizer.cpp
//! `Containerizer::resources`):
//!
//! * cpus: the CPUs this agent may actually use: its affinity mask (cpuset)
//!   and any CFS quota on its cgroup or an ancestor (Mesos counts all online
//!   CPUs, which over-offers inside a container or a restricted cgroup);
//! * mem: total − 1 GB on hosts with at least 2 GB, else half (total is the
//!   smaller of physical memory and the agent's cgroup memory limit);
//! * disk: size of the work_dir filesystem − 5 GB when it has at least 10 GB,
//!   else half;
//! * ports: `[31000-32000]`.

use std::path::{Path, PathBuf};

use mesos_proto::resources::Resources;
use mesos_proto::v1::Resource;

const MB: u64 = 1024 * 1024;
const GB: u64 = 1024 * MB;

/// Default port range offered when `--resources` names no ports.
pub const DEFAULT_PORTS: (u64, u64) = (31000, 32000);

/// Why the agent's resources could not be determined.
#[derive(Debug, thiserror::Error)]
pub enum ResourcesError {
    /// `--resources` did not parse.
    #[error("invalid value for flag '--resources': {0}")]
    Flag(String),
    /// Reading host facts failed.
    #[error("failed to detect {what} from {path}: {source}")]
    Detect {
        /// Which resource.
        what: &'static str,
        /// The file or directory read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What the host tells us, gathered by [`HostFacts::gather`].
#[derive(Debug, Clone, PartialEq)]
pub struct HostFacts {
    /// CPUs in the agent's affinity mask (cpuset).
    pub affinity_cpus: usize,
    /// Tightest CFS quota on the agent's cgroup path, in CPUs.
    pub cpu_quota: Option<f64>,
    /// Physical memory in bytes.
    pub mem_total: u64,
    /// Tightest memory limit on the agent's cgroup path, in bytes.
    pub mem_limit: Option<u64>,
    /// Size of the work_dir filesystem in bytes.
    pub disk_total: u64,
}

/// Detected amounts, in Mesos units (CPUs, MB).
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    /// CPUs.
    pub cpus: f64,
    /// Memory in MB.
    pub mem: f64,
    /// Disk in MB.
    pub disk: f64,
    /// Port range.
    pub ports: (u64, u64),
}

/// Applies Mesos's detection rules to host facts.
pub fn detect(facts: &HostFacts) -> Detected {
    let mut cpus = facts.affinity_cpus.max(1) as f64;
    if let Some(quota) = facts.cpu_quota {
        // Mesos scalars carry 3 decimals; never offer less than that.
        cpus = cpus.min((quota * 1000.0).floor() / 1000.0).max(0.001);
    }
    let mem_total = facts
        .mem_limit
        .map_or(facts.mem_total, |limit| limit.min(facts.mem_total));
    let mem = if mem_total >= 2 * GB {
        mem_total - GB
    } else {
        mem_total / 2
    };
    let disk = if facts.disk_total >= 10 * GB {
        facts.disk_total - 5 * GB
    } else {
        facts.disk_total / 2
    };
    Detected {
        cpus,
        mem: (mem / MB) as f64,
        disk: (disk / MB) as f64,
        ports: DEFAULT_PORTS,
    }
}

impl HostFacts {
    /// Reads the facts for an agent whose work_dir is `work_dir`.
    pub fn gather(work_dir: &Path) -> Result<Self, ResourcesError> {
        let affinity_cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
            .map(|set| {
                (0..nix::sched::CpuSet::count())
                    .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
                    .count()
            })
            .unwrap_or_else(|_| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let cgroups = cgroup::own_cgroup_dirs();
        let mem_total = read_mem_total().map_err(|source| ResourcesError::Detect {
            what: "mem",
            path: PathBuf::from("/proc/meminfo"),
            source,
        })?;
        let disk_total = filesystem_size(work_dir).map_err(|source| ResourcesError::Detect {
            what: "disk",
            path: work_dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            affinity_cpus,
            cpu_quota: cgroup::cpu_quota(&cgroups),
            mem_total,
            mem_limit: cgroup::memory_limit(&cgroups),
            disk_total,
        })
    }
}

fn read_mem_total() -> std::io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    parse_mem_total(&meminfo)
        .ok_or_else(|| std::io::Error::other("no MemTotal line in /proc/meminfo"))
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Size of the filesystem holding `path` (created first if missing, as the
/// agent creates its work_dir anyway).
fn filesystem_size(path: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(path)?;
    let stat = nix::sys::statvfs::statvfs(path)?;
    Ok(stat.blocks() * stat.fragment_size())
}

/// The agent's own cgroups, read from `/proc/self/cgroup` and mountinfo.
mod cgroup {
    use std::path::{Path, PathBuf};

    /// A cgroup directory of this process and the controllers of its hierarchy
    /// (empty for cgroup2).
    #[derive(Debug, Clone, PartialEq)]
    pub struct OwnCgroup {
        pub controllers: Vec<String>,
        pub dir: PathBuf,
    }

    /// Maps each line of /proc/self/cgroup to a directory through the
    /// matching mount in /proc/self/mountinfo.
    pub fn own_cgroup_dirs() -> Vec<OwnCgroup> {
        let (Ok(cgroup), Ok(mountinfo)) = (
            std::fs::read_to_string("/proc/self/cgroup"),
            std::fs::read_to_string("/proc/self/mountinfo"),
        ) else {
            return Vec::new();
        };
        resolve(&cgroup, &mountinfo)
    }

    /// One cgroup mount: its root inside the hierarchy, mount point and
    /// controllers (empty for cgroup2).
    struct Mount {
        root: String,
        point: PathBuf,
        controllers: Option<Vec<String>>,
    }

    fn mounts(mountinfo: &str) -> Vec<Mount> {
        mountinfo
            .lines()
            .filter_map(|line| {
                let (left, right) = line.split_once(" - ")?;
                let fields: Vec<&str> = left.split(' ').collect();
                let mut right = right.split(' ');
                let fstype = right.next()?;
                let _source = right.next()?;
                let options = right.next().unwrap_or("");
                let controllers = match fstype {
                    "cgroup2" => None,
                    "cgroup" => Some(
                        options
                            .split(',')
                            .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                            .filter(|o| !o.starts_with("no") && *o != "relatime")
                            .map(str::to_string)
                            .collect(),
                    ),
                    _ => return None,
                };
                Some(Mount {
                    root: fields.get(3)?.to_string(),
                    point: PathBuf::from(fields.get(4)?),
                    controllers,
                })
            })
            .collect()
    }

    pub fn resolve(cgroup: &str, mountinfo: &str) -> Vec<OwnCgroup> {
        let mounts = mounts(mountinfo);
        cgroup
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ':');
                let _id = parts.next()?;
                let controllers: Vec<String> = parts
                    .next()?
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
                let path = parts.next()?;
                let mount = mounts.iter().find(|m| match &m.controllers {
                    None => controllers.is_empty(),
                    Some(mc) => {
                        !controllers.is_empty() && controllers.iter().all(|c| mc.contains(c))
                    }
                })?;
                let relative = path
                    .strip_prefix(mount.root.as_str())
                    .unwrap_or(path)
                    .trim_start_matches('/');
                Some(OwnCgroup {
                    controllers,
                    dir: mount.point.join(relative),
                })
            })
            .collect()
    }

    /// Walks from `dir` up to the mount point, yielding each level.
    fn ancestors(dir: &Path) -> impl Iterator<Item = &Path> {
        dir.ancestors()
            .take_while(|p| p.starts_with("/sys/fs/cgroup") || p.join("cgroup.procs").exists())
    }

    fn read(path: &Path) -> Option<String> {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Tightest CFS quota (in CPUs) over the agent's cgroup and ancestors.
    pub fn cpu_quota(cgroups: &[OwnCgroup]) -> Option<f64> {
        let mut tightest: Option<f64> = None;
        for cgroup in cgroups {
            let v1 = cgroup.controllers.iter().any(|c| c == "cpu");
            for dir in ancestors(&cgroup.dir) {
                let quota = if v1 {
                    let quota: i64 = read(&dir.join("cpu.cfs_quota_us"))?.parse().ok()?;
                    let period: i64 = read(&dir.join("cpu.cfs_period_us"))?.parse().ok()?;
                    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
                } else if cgroup.controllers.is_empty() {
                    read(&dir.join("cpu.max")).and_then(|text| parse_cpu_max(&text))
                } else {
                    None
                };
                if let Some(q) = quota {
                    tightest = Some(tightest.map_or(q, |t: f64| t.min(q)));
                }
            }
        }
        tightest
    }

    /// `cpu.max` is `max 100000` or `<quota> <period>`.
    pub fn parse_cpu_max(text: &str) -> Option<f64> {
        let mut parts = text.split_whitespace();
        let quota: f64 = parts.next()?.parse().ok()?;
        let period: f64 = parts.next()?.parse().ok()?;
        (period > 0.0).then(|| quota / period)
    }

    /// Tightest memory limit over the agent's cgroup and ancestors.
    pub fn memory_limit(cgroups: &[OwnCgroup]) -> Option<u64> {
        let mut tightest: Option<u64> = None;
        for cgroup in cgroups {
            let file = if cgroup.controllers.iter().any(|c| c == "memory") {
                "memory.limit_in_bytes"
            } else if cgroup.controllers.is_empty() {
                "memory.max"
            } else {
                continue;
            };
            for dir in ancestors(&cgroup.dir) {
                // "max" (v2) does not parse; v1's "unlimited" is a huge number
                // that min() with physical memory discards.
                if let Some(limit) = read(&dir.join(file)).and_then(|t| t.parse::<u64>().ok()) {
                    tightest = Some(tightest.map_or(limit, |t| t.min(limit)));
                }
            }
        }
        tightest
    }
}

/// Parses `--resources` and adds detected cpus/mem/disk/ports for any it
/// does not name, giving the agent's total resources in the pre-refinement
/// format `RegisterSlaveMessage` carries.
pub fn agent_resources(
    flag: Option<&str>,
    default_role: &str,
    facts: &HostFacts,
) -> Result<Vec<Resource>, ResourcesError> {
    let parse = |text: &str| {
        Resources::parse(text, default_role).map_err(|e| ResourcesError::Flag(e.to_string()))
    };
    let mut resources = match flag {
        Some(text) => parse(text)?,
        None => Resources::new(),
    };
    let detected = detect(facts);
    let named = |name: &str| resources.iter().any(|r| r.name == name);
    let mut missing = Vec::new();
    for (name, amount) in [
        ("cpus", detected.cpus),
        ("mem", detected.mem),
        ("disk", detected.disk),
    ] {
        if !named(name) {
            missing.push(format!("{name}:{amount}"));
        }
    }
    if !named("ports") {
        let (begin, end) = detected.ports;
        missing.push(format!("ports:[{begin}-{end}]"));
    }
    if !missing.is_empty() {
        resources.add(&parse(&missing.join(";"))?);
    }
    Ok(resources.to_pre_refinement())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HostFacts {
        HostFacts {
            affinity_cpus: 8,
            cpu_quota: None,
            mem_total: 16 * GB,
            mem_limit: None,
            disk_total: 100 * GB,
        }
    }

    #[test]
    fn large_host_keeps_one_gb_and_five_gb_back() {
        let d = detect(&facts());
        assert_eq!(d.cpus, 8.0);
        assert_eq!(d.mem, (15 * 1024) as f64);
        assert_eq!(d.disk, (95 * 1024) as f64);
        assert_eq!(d.ports, (31000, 32000));
    }

    #[test]
    fn small_host_offers_half() {
        let d = detect(&HostFacts {
            mem_total: 1536 * MB,
            disk_total: 8 * GB,
            ..facts()
        });
        assert_eq!(d.mem, 768.0);
        assert_eq!(d.disk, 4096.0);
    }

    #[test]
    fn cpu_quota_and_memory_limit_bound_the_offer() {
        let d = detect(&HostFacts {
            cpu_quota: Some(2.5),
            mem_limit: Some(4 * GB),
            ..facts()
        });
        assert_eq!(d.cpus, 2.5);
        assert_eq!(d.mem, 3072.0);
        let d = detect(&HostFacts {
            affinity_cpus: 2,
            cpu_quota: Some(6.0),
            mem_limit: Some(u64::MAX),
            ..facts()
        });
        assert_eq!(d.cpus, 2.0);
        assert_eq!(d.mem, (15 * 1024) as f64);
    }

    #[test]
    fn parses_meminfo_and_cpu_max() {
        assert_eq!(
            parse_mem_total("MemTotal:       24589112 kB\nMemFree: 1 kB\n"),
            Some(24_589_112 * 1024)
        );
        assert_eq!(cgroup::parse_cpu_max("max 100000"), None);
        assert_eq!(cgroup::parse_cpu_max("150000 100000"), Some(1.5));
    }

    #[test]
    fn resolves_own_cgroups_on_a_hybrid_host() {
        let proc_cgroup =
            "12:cpu,cpuacct:/user.slice\n4:memory:/user.slice\n0::/user.slice/session-1.scope\n";
        let mountinfo = "\
30 24 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
35 24 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
36 24 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
";
        let dirs = cgroup::resolve(proc_cgroup, mountinfo);
        assert_eq!(dirs.len(), 3);
        assert_eq!(
            dirs[0].dir,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/user.slice")
        );
        assert_eq!(
            dirs[1].dir,
            PathBuf::from("/sys/fs/cgroup/memory/user.slice")
        );
        assert_eq!(
            dirs[2].dir,
            PathBuf::from("/sys/fs/cgroup/unified/user.slice/session-1.scope")
        );
    }

    fn amount(resources: &[Resource], name: &str) -> Option<f64> {
        resources
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.scalar.as_ref())
            .map(|s| s.value)
    }

    #[test]
    fn flag_resources_win_and_the_rest_is_detected() {
        let resources = agent_resources(Some("cpus:3;mem:2048"), "*", &facts()).unwrap();
        assert_eq!(amount(&resources, "cpus"), Some(3.0));
        assert_eq!(amount(&resources, "mem"), Some(2048.0));
        assert_eq!(amount(&resources, "disk"), Some((95 * 1024) as f64));
        let ports = resources.iter().find(|r| r.name == "ports").unwrap();
        let range = &ports.ranges.as_ref().unwrap().range[0];
        assert_eq!((range.begin, range.end), (31000, 32000));
    }

    #[test]
    fn custom_ports_replace_the_default_range() {
        let resources = agent_resources(Some("ports:[5000-5001]"), "*", &facts()).unwrap();
        let ports: Vec<_> = resources.iter().filter(|r| r.name == "ports").collect();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].ranges.as_ref().unwrap().range[0].end, 5001);
    }

    #[test]
    fn bad_resources_name_the_flag() {
        let error = agent_resources(Some("cpus:lots"), "*", &facts()).unwrap_err();
        assert!(error.to_string().contains("--resources"), "{error}");
    }

    #[test]
    fn gathers_real_host_facts() {
        let dir = tempfile::tempdir().unwrap();
        let facts = HostFacts::gather(dir.path()).unwrap();
        assert!(facts.affinity_cpus >= 1);
        assert!(facts.mem_total > 0);
        assert!(facts.disk_total > 0);
        let detected = detect(&facts);
        assert!(detected.cpus <= std::thread::available_parallelism().unwrap().get() as f64);
        assert!(detected.mem > 0.0 && detected.disk > 0.0);
    }
}
