//! Cgroup layout detection from `/proc/self/mountinfo`, and the agent's own cgroup
//! from `/proc/self/cgroup`.
//!
//! The recipe is the one youki and systemd use (isolation.md §2.1), applied to mount
//! entries rather than `statfs`: cgroup2 mounted at the hierarchy (`/sys/fs/cgroup`)
//! is *unified*; v1 hierarchies plus a cgroup2 mount (normally `<hierarchy>/unified`)
//! is *hybrid*; v1 hierarchies alone is *legacy*.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Errors while reading the host's cgroup layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// `/proc/self/mountinfo` or `/proc/self/cgroup` could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No cgroup filesystem is mounted at all.
    #[error("no cgroup filesystem is mounted (looked for cgroup2 at {hierarchy} and cgroup v1 hierarchies in /proc/self/mountinfo)")]
    NoCgroups { hierarchy: PathBuf },
    /// `/proc/self/cgroup` has no line for a mounted hierarchy.
    #[error("/proc/self/cgroup has no entry for the {hierarchy} hierarchy mounted at {mount}")]
    NotAMember { hierarchy: String, mount: PathBuf },
    /// Our cgroup lies outside the part of the hierarchy that is mounted.
    #[error("our cgroup {path} in the {hierarchy} hierarchy is outside its mount root {mount_root} (mounted at {mount})")]
    OutsideMount {
        hierarchy: String,
        path: String,
        mount_root: String,
        mount: PathBuf,
    },
}

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// cgroup2 mounted at the hierarchy (`/sys/fs/cgroup`): the v2 driver's home.
    Unified,
    /// v1 controller hierarchies plus a controller-less cgroup2 tree (usually
    /// `/sys/fs/cgroup/unified`), as on Ubuntu 20.04 and the CI host.
    Hybrid,
    /// v1 hierarchies only.
    Legacy,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Unified => "unified",
            Layout::Hybrid => "hybrid",
            Layout::Legacy => "legacy",
        })
    }
}

/// Detects the layout from the text of `/proc/self/mountinfo`; `hierarchy` is
/// `--cgroups_hierarchy` (default `/sys/fs/cgroup`).
pub fn detect_layout(mountinfo: &str, hierarchy: &Path) -> Result<Layout, LayoutError> {
    let mounts = parse_mountinfo(mountinfo);
    if mounts
        .iter()
        .any(|m| m.is_cgroup2() && m.mount_point == hierarchy)
    {
        return Ok(Layout::Unified);
    }
    let has_v1 = mounts.iter().any(CgroupMount::is_cgroup1);
    let has_v2 = mounts.iter().any(CgroupMount::is_cgroup2);
    match (has_v1, has_v2) {
        (true, true) => Ok(Layout::Hybrid),
        (true, false) => Ok(Layout::Legacy),
        _ => Err(LayoutError::NoCgroups {
            hierarchy: hierarchy.to_owned(),
        }),
    }
}

/// What the drivers need to know about the host: the texts of `/proc/self/mountinfo`
/// and `/proc/self/cgroup`. Tests pass fake texts pointing into a temporary directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The text of `/proc/self/mountinfo`.
    pub mountinfo: String,
    /// The text of `/proc/self/cgroup`.
    pub self_cgroup: String,
}

impl HostInfo {
    /// Reads this process's mount table and cgroup membership.
    pub fn read() -> Result<Self, LayoutError> {
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|source| LayoutError::Read {
                path: PathBuf::from(path),
                source,
            })
        };
        Ok(HostInfo {
            mountinfo: read("/proc/self/mountinfo")?,
            self_cgroup: read("/proc/self/cgroup")?,
        })
    }

    /// Cgroup mounts, v1 and v2.
    pub(crate) fn mounts(&self) -> Vec<CgroupMount> {
        parse_mountinfo(&self.mountinfo)
    }

    /// The cgroup2 mount to use: the one at `<hierarchy>` or `<hierarchy>/unified` if
    /// present, else the first one.
    pub(crate) fn cgroup2_mount(&self, hierarchy: &Path) -> Option<CgroupMount> {
        let mounts: Vec<_> = self
            .mounts()
            .into_iter()
            .filter(|m| m.is_cgroup2())
            .collect();
        let preferred = [hierarchy.to_owned(), hierarchy.join("unified")];
        preferred
            .iter()
            .find_map(|p| mounts.iter().find(|m| &m.mount_point == p).cloned())
            .or_else(|| mounts.into_iter().next())
    }

    /// The v1 mount whose hierarchy carries `controller`, preferring one below
    /// `hierarchy`.
    pub(crate) fn cgroup1_mount(&self, hierarchy: &Path, controller: &str) -> Option<CgroupMount> {
        let mut candidates: Vec<_> = self
            .mounts()
            .into_iter()
            .filter(|m| m.is_cgroup1() && m.has_option(controller))
            .collect();
        candidates.sort_by_key(|m| !m.mount_point.starts_with(hierarchy));
        candidates.into_iter().next()
    }

    /// The directory of our own cgroup in `mount`'s hierarchy.
    pub(crate) fn own_dir(&self, mount: &CgroupMount) -> Result<PathBuf, LayoutError> {
        let own = self.own_path(mount)?;
        let relative = own
            .strip_prefix(mount.root.trim_end_matches('/'))
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .ok_or_else(|| LayoutError::OutsideMount {
                hierarchy: mount.hierarchy_name(),
                path: own.clone(),
                mount_root: mount.root.clone(),
                mount: mount.mount_point.clone(),
            })?;
        Ok(join_relative(&mount.mount_point, relative))
    }

    /// Our cgroup path in `mount`'s hierarchy, as listed in `/proc/self/cgroup`.
    fn own_path(&self, mount: &CgroupMount) -> Result<String, LayoutError> {
        self.self_cgroup
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ':');
                let _id = fields.next()?;
                let controllers = fields.next()?;
                let path = fields.next()?;
                Some((controllers, path))
            })
            .find(|(controllers, _)| mount.matches_self_cgroup_entry(controllers))
            .map(|(_, path)| path.trim_end_matches(" (deleted)").to_owned())
            .ok_or_else(|| LayoutError::NotAMember {
                hierarchy: mount.hierarchy_name(),
                mount: mount.mount_point.clone(),
            })
    }
}

/// Joins a cgroup path such as `/a/b` below `base`, ignoring the leading slash.
pub(crate) fn join_relative(base: &Path, relative: &str) -> PathBuf {
    let mut path = base.to_owned();
    for component in Path::new(relative).components() {
        if let Component::Normal(name) = component {
            path.push(name);
        }
    }
    path
}

/// One cgroup filesystem mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// The path inside the hierarchy that is mounted (field 4, usually `/`).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// `cgroup` (v1) or `cgroup2`.
    pub fs_type: String,
    /// Super options: for v1 these name the controllers (`cpu,cpuacct`, `name=systemd`).
    pub options: Vec<String>,
}

impl CgroupMount {
    pub fn is_cgroup2(&self) -> bool {
        self.fs_type == "cgroup2"
    }

    pub fn is_cgroup1(&self) -> bool {
        self.fs_type == "cgroup"
    }

    pub fn has_option(&self, option: &str) -> bool {
        self.options.iter().any(|o| o == option)
    }

    /// A name for messages: `cgroup2`, or the v1 controllers (`cpu,cpuacct`).
    fn hierarchy_name(&self) -> String {
        if self.is_cgroup2() {
            return "cgroup2".to_owned();
        }
        let controllers: Vec<&str> = self
            .options
            .iter()
            .map(String::as_str)
            .filter(|o| !is_generic_option(o))
            .collect();
        controllers.join(",")
    }

    /// True if a `/proc/self/cgroup` controller list (`cpu,cpuacct`, `name=systemd`,
    /// or empty for cgroup2) denotes this mount's hierarchy.
    fn matches_self_cgroup_entry(&self, controllers: &str) -> bool {
        if self.is_cgroup2() {
            return controllers.is_empty();
        }
        !controllers.is_empty() && controllers.split(',').all(|c| self.has_option(c))
    }
}

/// Mount options that are not controller names.
fn is_generic_option(option: &str) -> bool {
    matches!(
        option,
        "rw" | "ro" | "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode" | "favordynmods"
    ) || option.starts_with("release_agent=")
}

/// Parses the cgroup entries of a mountinfo text. Format (proc(5)): `id parent
/// major:minor root mount-point options [optional fields] - fstype source super-options`.
fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<CgroupMount> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    let mut after = after.split(' ');
    let fs_type = after.next()?;
    if fs_type != "cgroup" && fs_type != "cgroup2" {
        return None;
    }
    let _source = after.next()?;
    let options = after.next().unwrap_or("");
    Some(CgroupMount {
        root: unescape_octal(fields.get(3)?),
        mount_point: PathBuf::from(unescape_octal(fields.get(4)?)),
        fs_type: fs_type.to_owned(),
        options: options.split(',').map(str::to_owned).collect(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` (octal).
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match escape {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The CI host: v1 controllers, cpu and cpuacct mounted separately, cgroup2 at
    /// /sys/fs/cgroup/unified.
    pub const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// Debian 12 / Ubuntu 22.04: cgroup2 at /sys/fs/cgroup.
    pub const UNIFIED: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    /// CentOS 7 style: v1 only, cpu and cpuacct co-mounted.
    pub const LEGACY: &str = "\
24 19 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
25 24 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
27 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
28 24 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
29 24 0:26 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,freezer
30 24 0:27 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
";

    const SYS: &str = "/sys/fs/cgroup";

    #[test]
    fn detects_the_three_layouts() {
        assert_eq!(
            detect_layout(UNIFIED, Path::new(SYS)).unwrap(),
            Layout::Unified
        );
        assert_eq!(
            detect_layout(HYBRID, Path::new(SYS)).unwrap(),
            Layout::Hybrid
        );
        assert_eq!(
            detect_layout(LEGACY, Path::new(SYS)).unwrap(),
            Layout::Legacy
        );
    }

    #[test]
    fn no_cgroup_mount_is_an_error_naming_the_hierarchy() {
        let err =
            detect_layout("22 27 0:21 / /proc rw - proc proc rw\n", Path::new(SYS)).unwrap_err();
        assert!(err.to_string().contains("/sys/fs/cgroup"), "{err}");
    }

    #[test]
    fn cgroup2_elsewhere_than_the_hierarchy_is_not_unified() {
        // --cgroups_hierarchy points somewhere else than the cgroup2 mount.
        assert!(detect_layout(UNIFIED, Path::new("/cgroup")).is_err());
        assert_eq!(
            detect_layout(HYBRID, Path::new("/elsewhere")).unwrap(),
            Layout::Hybrid
        );
    }

    #[test]
    fn finds_comounted_v1_controllers() {
        let host = HostInfo {
            mountinfo: LEGACY.to_owned(),
            self_cgroup: "4:cpu,cpuacct:/user.slice\n3:memory:/user.slice\n".to_owned(),
        };
        let cpu = host.cgroup1_mount(Path::new(SYS), "cpu").unwrap();
        let cpuacct = host.cgroup1_mount(Path::new(SYS), "cpuacct").unwrap();
        assert_eq!(cpu, cpuacct);
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(
            host.own_dir(&cpu).unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice")
        );
        assert!(host.cgroup1_mount(Path::new(SYS), "blkio").is_none());
    }

    #[test]
    fn own_dir_strips_the_mount_root() {
        // A container that sees only its own part of the hierarchy (cgroups-rs #131).
        let host = HostInfo {
            mountinfo:
                "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                    .to_owned(),
            self_cgroup: "4:memory:/docker/abc/agent\n".to_owned(),
        };
        let memory = host.cgroup1_mount(Path::new(SYS), "memory").unwrap();
        assert_eq!(
            host.own_dir(&memory).unwrap(),
            Path::new("/sys/fs/cgroup/memory/agent")
        );
    }

    #[test]
    fn own_dir_outside_the_mount_is_an_error() {
        let host = HostInfo {
            mountinfo:
                "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                    .to_owned(),
            self_cgroup: "4:memory:/docker/abcdef\n".to_owned(),
        };
        let memory = host.cgroup1_mount(Path::new(SYS), "memory").unwrap();
        let err = host.own_dir(&memory).unwrap_err();
        assert!(matches!(err, LayoutError::OutsideMount { .. }), "{err}");
    }

    #[test]
    fn cgroup2_membership_and_preference() {
        let host = HostInfo {
            mountinfo: HYBRID.to_owned(),
            self_cgroup: "4:memory:/a\n0::/user/agent\n".to_owned(),
        };
        let unified = host.cgroup2_mount(Path::new(SYS)).unwrap();
        assert_eq!(unified.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(
            host.own_dir(&unified).unwrap(),
            Path::new("/sys/fs/cgroup/unified/user/agent")
        );
    }

    #[test]
    fn mount_points_are_unescaped() {
        let mounts = parse_mountinfo("1 2 0:3 / /tmp/with\\040space rw - cgroup2 none rw\n");
        assert_eq!(mounts[0].mount_point, Path::new("/tmp/with space"));
    }
}
