//! The agent's `--isolation` flag, with Mesos's isolator names and rules
//! (src/slave/containerizer/mesos/containerizer.cpp `MesosContainerizer::create`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use nix::sched::CloneFlags;

/// Errors in an `--isolation` value; each names the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsolationError {
    /// Not an isolator name Mesos knows.
    #[error("unknown isolator '{name}' in --isolation (known: {known})")]
    Unknown { name: String, known: String },
    /// A Mesos isolator this implementation does not provide.
    #[error("isolator '{name}' in --isolation is a Mesos isolator that mesos-rs does not implement (supported: {known})")]
    Unsupported { name: String, known: String },
    /// The same entry twice (Mesos: "Duplicate entries found in --isolation flag").
    #[error("duplicate entry '{name}' in --isolation")]
    Duplicate { name: String },
    /// More than one `filesystem/*` isolator.
    #[error("--isolation lists both '{first}' and '{second}': using multiple filesystem isolators simultaneously is disallowed")]
    MultipleFilesystems { first: String, second: String },
    /// An isolator that needs another one.
    #[error("isolator '{name}' in --isolation requires '{requires}' to be enabled too")]
    Requires {
        name: &'static str,
        requires: &'static str,
    },
}

/// One isolator this implementation provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IsolatorKind {
    /// `posix/cpu`: CPU usage accounting only.
    PosixCpu,
    /// `posix/mem`: memory usage accounting only.
    PosixMem,
    /// `cgroups/cpu`: `cpu.weight`/`cpu.max` (v2) or `cpu.shares`/CFS quota (v1).
    CgroupsCpu,
    /// `cgroups/mem`: memory limits and OOM detection.
    CgroupsMem,
    /// `cgroups/pids`: `pids.max`.
    CgroupsPids,
    /// `cgroups/all`: every cgroup controller above.
    CgroupsAll,
    /// `filesystem/posix`: the sandbox is a plain directory (the default).
    FilesystemPosix,
    /// `filesystem/linux`: a private mount namespace per container.
    FilesystemLinux,
    /// `namespaces/pid`: a pid namespace per container.
    NamespacesPid,
    /// `namespaces/ipc`: an IPC namespace per container.
    NamespacesIpc,
}

impl IsolatorKind {
    /// Every supported isolator.
    pub const ALL: [IsolatorKind; 10] = [
        IsolatorKind::PosixCpu,
        IsolatorKind::PosixMem,
        IsolatorKind::CgroupsCpu,
        IsolatorKind::CgroupsMem,
        IsolatorKind::CgroupsPids,
        IsolatorKind::CgroupsAll,
        IsolatorKind::FilesystemPosix,
        IsolatorKind::FilesystemLinux,
        IsolatorKind::NamespacesPid,
        IsolatorKind::NamespacesIpc,
    ];

    /// The Mesos name.
    pub fn name(self) -> &'static str {
        match self {
            IsolatorKind::PosixCpu => "posix/cpu",
            IsolatorKind::PosixMem => "posix/mem",
            IsolatorKind::CgroupsCpu => "cgroups/cpu",
            IsolatorKind::CgroupsMem => "cgroups/mem",
            IsolatorKind::CgroupsPids => "cgroups/pids",
            IsolatorKind::CgroupsAll => "cgroups/all",
            IsolatorKind::FilesystemPosix => "filesystem/posix",
            IsolatorKind::FilesystemLinux => "filesystem/linux",
            IsolatorKind::NamespacesPid => "namespaces/pid",
            IsolatorKind::NamespacesIpc => "namespaces/ipc",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    fn is_filesystem(self) -> bool {
        matches!(
            self,
            IsolatorKind::FilesystemPosix | IsolatorKind::FilesystemLinux
        )
    }
}

/// Deprecated names Mesos still accepts, with their replacements.
const ALIASES: [(&str, &[&str]); 2] = [
    ("cgroups", &["cgroups/cpu", "cgroups/mem"]),
    ("process", &["posix/cpu", "posix/mem"]),
];

/// Mesos isolators that exist but are not implemented here (a distinct error from a typo).
const MESOS_ONLY: [&str; 27] = [
    "posix/disk",
    "posix/rlimits",
    "disk/du",
    "disk/xfs",
    "cgroups/blkio",
    "cgroups/cpuset",
    "cgroups/devices",
    "cgroups/hugetlb",
    "cgroups/net_cls",
    "cgroups/net_prio",
    "cgroups/perf_event",
    "filesystem/shared",
    "appc/runtime",
    "docker/runtime",
    "docker/volume",
    "linux/capabilities",
    "linux/devices",
    "linux/nnp",
    "linux/seccomp",
    "network/cni",
    "network/port_mapping",
    "network/ports",
    "volume/host_path",
    "volume/image",
    "volume/sandbox_path",
    "volume/secret",
    "gpu/nvidia",
];

/// The namespaces the containerizer clones for each container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// `CLONE_NEWPID` (`namespaces/pid`).
    pub pid: bool,
    /// `CLONE_NEWIPC` (`namespaces/ipc`).
    pub ipc: bool,
    /// `CLONE_NEWNS` (`filesystem/linux`).
    pub mount: bool,
}

impl Namespaces {
    /// The matching `clone` flags.
    pub fn clone_flags(self) -> CloneFlags {
        let mut flags = CloneFlags::empty();
        flags.set(CloneFlags::CLONE_NEWPID, self.pid);
        flags.set(CloneFlags::CLONE_NEWIPC, self.ipc);
        flags.set(CloneFlags::CLONE_NEWNS, self.mount);
        flags
    }
}

/// A parsed, validated `--isolation` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    isolators: BTreeSet<IsolatorKind>,
}

impl Default for Isolation {
    /// Mesos's default, `posix/cpu,posix/mem` (plus the implied `filesystem/posix`).
    fn default() -> Self {
        "posix/cpu,posix/mem"
            .parse()
            .expect("the default --isolation value is valid")
    }
}

impl Isolation {
    /// True if `kind` is enabled (`cgroups/all` does not imply the others here; use the
    /// controller methods for that).
    pub fn contains(&self, kind: IsolatorKind) -> bool {
        self.isolators.contains(&kind)
    }

    /// The enabled isolators, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = IsolatorKind> + '_ {
        self.isolators.iter().copied()
    }

    /// True if CPU limits are enforced with cgroups (`cgroups/cpu` or `cgroups/all`).
    pub fn cgroups_cpu(&self) -> bool {
        self.contains(IsolatorKind::CgroupsCpu) || self.contains(IsolatorKind::CgroupsAll)
    }

    /// True if memory limits are enforced with cgroups (`cgroups/mem` or `cgroups/all`).
    pub fn cgroups_mem(&self) -> bool {
        self.contains(IsolatorKind::CgroupsMem) || self.contains(IsolatorKind::CgroupsAll)
    }

    /// True if the pids controller is used (`cgroups/pids` or `cgroups/all`).
    pub fn cgroups_pids(&self) -> bool {
        self.contains(IsolatorKind::CgroupsPids) || self.contains(IsolatorKind::CgroupsAll)
    }

    /// The namespaces the containerizer must create for each container.
    pub fn namespaces(&self) -> Namespaces {
        Namespaces {
            pid: self.contains(IsolatorKind::NamespacesPid),
            ipc: self.contains(IsolatorKind::NamespacesIpc),
            mount: self.contains(IsolatorKind::FilesystemLinux),
        }
    }
}

impl FromStr for Isolation {
    type Err = IsolationError;

    /// Parses a comma-separated list. Empty entries are ignored (Mesos tokenizes), the
    /// aliases `cgroups` and `process` expand as in Mesos, and without a `filesystem/*`
    /// entry `filesystem/posix` is implied.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut seen = BTreeSet::new();
        let mut isolators = BTreeSet::new();
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !seen.insert(name) {
                return Err(IsolationError::Duplicate {
                    name: name.to_owned(),
                });
            }
            for kind in resolve(name)? {
                isolators.insert(kind);
            }
        }
        validate(&isolators)?;
        if !isolators.iter().any(|k| k.is_filesystem()) {
            isolators.insert(IsolatorKind::FilesystemPosix);
        }
        Ok(Isolation { isolators })
    }
}

impl fmt::Display for Isolation {
    /// The canonical comma-separated form, which parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(IsolatorKind::name).collect();
        f.write_str(&names.join(","))
    }
}

/// Maps one entry to isolators (aliases expand to two).
fn resolve(name: &str) -> Result<Vec<IsolatorKind>, IsolationError> {
    if let Some(kind) = IsolatorKind::from_name(name) {
        return Ok(vec![kind]);
    }
    if let Some((alias, replacements)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        tracing::warn!(
            "the '{alias}' isolation flag is deprecated, please update your flags to '--isolation={}'",
            replacements.join(",")
        );
        return Ok(replacements
            .iter()
            .filter_map(|r| IsolatorKind::from_name(r))
            .collect());
    }
    let known = IsolatorKind::ALL.map(IsolatorKind::name).join(", ");
    if MESOS_ONLY.contains(&name) {
        return Err(IsolationError::Unsupported {
            name: name.to_owned(),
            known,
        });
    }
    Err(IsolationError::Unknown {
        name: name.to_owned(),
        known,
    })
}

/// Cross-entry rules.
fn validate(isolators: &BTreeSet<IsolatorKind>) -> Result<(), IsolationError> {
    let filesystems: Vec<_> = isolators.iter().filter(|k| k.is_filesystem()).collect();
    if let [first, second, ..] = filesystems.as_slice() {
        return Err(IsolationError::MultipleFilesystems {
            first: first.name().to_owned(),
            second: second.name().to_owned(),
        });
    }
    // Mesos: the pid namespace needs the mount namespace of filesystem/linux so that
    // the container's /proc mount does not propagate to the host.
    if isolators.contains(&IsolatorKind::NamespacesPid)
        && !isolators.contains(&IsolatorKind::FilesystemLinux)
    {
        return Err(IsolationError::Requires {
            name: "namespaces/pid",
            requires: "filesystem/linux",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<Isolation, IsolationError> {
        value.parse()
    }

    #[test]
    fn default_is_mesos_default() {
        let isolation = Isolation::default();
        assert_eq!(
            isolation.to_string(),
            "posix/cpu,posix/mem,filesystem/posix"
        );
        assert!(!isolation.cgroups_cpu());
        assert_eq!(isolation.namespaces(), Namespaces::default());
    }

    #[test]
    fn cgroups_names_select_controllers() {
        let isolation = parse("cgroups/cpu,cgroups/mem").unwrap();
        assert!(isolation.cgroups_cpu() && isolation.cgroups_mem());
        assert!(!isolation.cgroups_pids());
        let all = parse("cgroups/all").unwrap();
        assert!(all.cgroups_cpu() && all.cgroups_mem() && all.cgroups_pids());
        assert!(parse("cgroups/pids").unwrap().cgroups_pids());
    }

    #[test]
    fn aliases_expand() {
        assert_eq!(
            parse("cgroups").unwrap(),
            parse("cgroups/cpu,cgroups/mem").unwrap()
        );
        assert_eq!(
            parse("process").unwrap(),
            parse("posix/cpu,posix/mem").unwrap()
        );
    }

    #[test]
    fn namespaces_follow_isolators() {
        let isolation = parse("filesystem/linux,namespaces/pid,namespaces/ipc").unwrap();
        let ns = isolation.namespaces();
        assert!(ns.pid && ns.ipc && ns.mount);
        assert_eq!(
            ns.clone_flags(),
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNS
        );
        assert!(!isolation.contains(IsolatorKind::FilesystemPosix));
    }

    #[test]
    fn unknown_entry_is_named() {
        let err = parse("cgroups/cpu,cgroups/memory").unwrap_err();
        assert!(matches!(&err, IsolationError::Unknown { name, .. } if name == "cgroups/memory"));
        assert!(err.to_string().contains("'cgroups/memory'"), "{err}");
    }

    #[test]
    fn unimplemented_mesos_isolator_is_distinguished_from_a_typo() {
        let err = parse("network/cni").unwrap_err();
        assert!(matches!(err, IsolationError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("does not implement"), "{err}");
    }

    #[test]
    fn duplicates_and_conflicts_are_rejected() {
        assert_eq!(
            parse("posix/cpu,posix/cpu").unwrap_err(),
            IsolationError::Duplicate {
                name: "posix/cpu".to_owned()
            }
        );
        assert!(matches!(
            parse("filesystem/posix,filesystem/linux").unwrap_err(),
            IsolationError::MultipleFilesystems { .. }
        ));
        assert!(matches!(
            parse("namespaces/pid").unwrap_err(),
            IsolationError::Requires {
                requires: "filesystem/linux",
                ..
            }
        ));
    }

    #[test]
    fn empty_entries_are_ignored_and_display_round_trips() {
        let isolation = parse(" cgroups/mem,,cgroups/cpu, ").unwrap();
        assert_eq!(parse(&isolation.to_string()).unwrap(), isolation);
    }
}
