//! Which namespaces a container gets, as OCI `linux.namespaces` and as
//! `clone3` flags.

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, Spec};

/// The namespaces a container is cloned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Namespaces {
    /// `namespaces/pid`: the executor is pid 1 and sees only its descendants.
    pub pid: bool,
    /// `filesystem/linux`: private mounts (/proc, image rootfs, sandbox).
    pub mount: bool,
    /// `namespaces/ipc`.
    pub ipc: bool,
    /// Hostname = container id (or ContainerInfo.hostname).
    pub uts: bool,
    /// A network namespace with only loopback.
    pub net: bool,
    /// A cgroup namespace; only meaningful on a unified (v2) host, where the
    /// clone lands in the container's cgroup first.
    pub cgroup: bool,
}

impl Namespaces {
    /// pid, mount, uts and ipc: the usual isolated container.
    pub fn isolated() -> Self {
        Namespaces {
            pid: true,
            mount: true,
            ipc: true,
            uts: true,
            net: false,
            cgroup: false,
        }
    }

    /// A pid namespace needs its own /proc, hence a mount namespace (Mesos's
    /// `namespaces/pid` likewise requires `filesystem/linux`); so does a rootfs.
    pub fn normalized(mut self, has_rootfs: bool) -> Self {
        self.mount |= self.pid || has_rootfs;
        self
    }

    fn types(&self) -> impl Iterator<Item = LinuxNamespaceType> {
        [
            (self.pid, LinuxNamespaceType::Pid),
            (self.mount, LinuxNamespaceType::Mount),
            (self.ipc, LinuxNamespaceType::Ipc),
            (self.uts, LinuxNamespaceType::Uts),
            (self.net, LinuxNamespaceType::Network),
            (self.cgroup, LinuxNamespaceType::Cgroup),
        ]
        .into_iter()
        .filter_map(|(on, typ)| on.then_some(typ))
    }

    /// The OCI `linux.namespaces` entries (new namespaces, no paths).
    pub fn to_oci(&self) -> Vec<LinuxNamespace> {
        self.types()
            .map(|typ| {
                LinuxNamespaceBuilder::default()
                    .typ(typ)
                    .build()
                    .expect("a namespace with only a type always builds")
            })
            .collect()
    }

    /// Reads the namespaces back from a spec (joining existing namespaces by
    /// path is not supported and is ignored).
    pub fn from_spec(spec: &Spec) -> Self {
        let mut namespaces = Namespaces::default();
        let entries = spec
            .linux()
            .as_ref()
            .and_then(|linux| linux.namespaces().as_ref());
        for entry in entries.into_iter().flatten() {
            if entry.path().is_some() {
                continue;
            }
            match entry.typ() {
                LinuxNamespaceType::Pid => namespaces.pid = true,
                LinuxNamespaceType::Mount => namespaces.mount = true,
                LinuxNamespaceType::Ipc => namespaces.ipc = true,
                LinuxNamespaceType::Uts => namespaces.uts = true,
                LinuxNamespaceType::Network => namespaces.net = true,
                LinuxNamespaceType::Cgroup => namespaces.cgroup = true,
                LinuxNamespaceType::User | LinuxNamespaceType::Time => {}
            }
        }
        namespaces
    }

    /// The `CLONE_NEW*` flags for `clone3`.
    pub fn clone_flags(&self) -> u64 {
        self.types()
            .map(|typ| match typ {
                LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
                LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
                LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
                LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
                LinuxNamespaceType::Network => libc::CLONE_NEWNET,
                LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
                LinuxNamespaceType::User => libc::CLONE_NEWUSER,
                LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
            })
            // The CLONE_NEW* constants are positive c_ints.
            .fold(0u64, |flags, flag| flags | flag as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, SpecBuilder};

    #[test]
    fn pid_namespace_implies_mount_namespace() {
        let only_pid = Namespaces {
            pid: true,
            ..Namespaces::default()
        };
        assert!(only_pid.normalized(false).mount);
        assert!(Namespaces::default().normalized(true).mount);
        assert!(!Namespaces::default().normalized(false).mount);
    }

    #[test]
    fn spec_round_trip_preserves_namespaces_and_flags() {
        let namespaces = Namespaces {
            net: true,
            ..Namespaces::isolated()
        };
        let spec = SpecBuilder::default()
            .linux(
                LinuxBuilder::default()
                    .namespaces(namespaces.to_oci())
                    .build()
                    .expect("linux"),
            )
            .build()
            .expect("spec");
        let back = Namespaces::from_spec(&spec);
        assert_eq!(back, namespaces);
        let expected = (libc::CLONE_NEWPID
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWNET) as u64;
        assert_eq!(back.clone_flags(), expected);
    }
}
