//! A private network of "hosts" on one machine: one network namespace per
//! host, each joined to a private bridge by a veth pair.
//!
//! Everything is done with iproute2's `ip`, run in the network namespace the
//! [`Lab`] was created from (normally the machine's own), so a `Lab` can be
//! used from any thread, including one that has entered a lab host.
//!
//! The lab only ever puts addresses on the namespace ends of its veths
//! ([`SUBNET`]); the bridge and the machine's own namespace get none and no
//! route to the lab, so lab traffic stays on the bridge and nothing else on
//! the machine can reach a lab host or be reached from one.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use nix::sched::{setns, CloneFlags};

/// The lab's private subnet. Checked free on this machine when a lab is
/// created: no address or route of the machine's namespace falls in it.
pub const SUBNET: Ipv4Addr = Ipv4Addr::new(10, 244, 77, 0);
/// Prefix length of [`SUBNET`].
pub const PREFIX_LEN: u8 = 24;
/// Host `i` (in the order given to [`Lab::new`]) gets `10.244.77.(10 + i)`.
const FIRST_HOST_OCTET: u8 = 10;
/// One digit of host index in veth names (and far below the broadcast
/// address).
const MAX_HOSTS: usize = 10;
/// Linux's IFNAMSIZ minus the terminating NUL.
const MAX_IFNAME: usize = 15;

/// Names of everything a lab creates start with these, followed by the
/// lab's tag `<pid>x<n>` (both in hex, to fit IFNAMSIZ): unique per process
/// and per lab, and telling [`Lab::new`] which leftovers belong to processes
/// that no longer exist.
const NETNS_PREFIX: &str = "mesos-lab-";
const BRIDGE_PREFIX: &str = "mlb";
const VETH_PREFIX: &str = "mlv";
/// Where `ip netns add` pins named namespaces.
const NETNS_DIR: &str = "/run/netns";
/// The interface name of every host's end of its veth.
const HOST_IFNAME: &str = "eth0";

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);
/// Serializes set-up and tear-down within this process: concurrent
/// `ip netns add` may race to make `/run/netns` a shared mount point.
static IP_LOCK: Mutex<()> = Mutex::new(());

/// Errors of building, using or tearing down a lab.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `ip` could not be started.
    #[error("cannot run `ip {args}`: {source}")]
    Spawn {
        /// The arguments.
        args: String,
        /// Why.
        source: io::Error,
    },
    /// `ip` exited with an error.
    #[error("`ip {args}` failed: {stderr}")]
    Ip {
        /// The arguments.
        args: String,
        /// What `ip` said.
        stderr: String,
    },
    /// A namespace file could not be opened.
    #[error("cannot open network namespace {path}: {source}")]
    Open {
        /// The namespace file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// `setns(2)` into a host failed.
    #[error("cannot enter the network namespace of host {host}: {source}")]
    Enter {
        /// The lab host.
        host: String,
        /// Why.
        source: nix::Error,
    },
    /// The lab has no host of that name.
    #[error("no host {0:?} in this lab")]
    UnknownHost(String),
    /// Invalid host list.
    #[error("bad host list: {0}")]
    BadHosts(String),
    /// A generated interface name does not fit IFNAMSIZ.
    #[error("interface name {0} is longer than {MAX_IFNAME} bytes")]
    NameTooLong(String),
    /// The machine already uses the lab's subnet.
    #[error("{SUBNET}/{PREFIX_LEN} is in use on this machine ({0}); the lab needs it to itself")]
    SubnetInUse(String),
}

/// Why lab tests cannot run here (not root, no `ip netns`), if so.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("network namespaces need root".into());
    }
    match Command::new(ip_program()).args(["netns", "list"]).output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Some(format!("cannot run `ip` (install iproute2): {error}")),
    }
}

/// One host of a lab.
#[derive(Debug)]
struct Host {
    name: String,
    netns: String,
    /// The bridge-side end of the host's veth (in the lab's root namespace).
    veth: String,
    address: Ipv4Addr,
    /// An open handle on the namespace, for `setns(2)`; set once created.
    handle: Option<Arc<OwnedFd>>,
}

/// A bridge and one network namespace per host, torn down on drop (also when
/// a test panics). Processes started in a host must be ended before the lab
/// is dropped: a namespace lives on while a process is in it.
#[derive(Debug)]
pub struct Lab {
    bridge: String,
    hosts: Vec<Host>,
    /// The namespace the lab was created from, which holds the bridge and
    /// the bridge-side veth ends; every `ip` command runs there.
    root: Arc<OwnedFd>,
}

impl Lab {
    /// Creates the bridge and the hosts `names` (letters, digits and `-`),
    /// with addresses `10.244.77.10`, `.11`, … in that order, loopback up.
    /// Also removes what earlier labs of dead processes left behind.
    pub fn new(names: &[&str]) -> Result<Lab, NetnsError> {
        let mut lab = Lab::plan(names)?;
        // Dropping a lab takes IP_LOCK too: release it before a failed lab
        // is dropped (and torn down).
        let built = {
            let _serial = IP_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
            lab.check_subnet_free().and_then(|()| {
                lab.sweep_stale();
                lab.build()
            })
        };
        built.map(|()| lab)
    }

    /// Names and addresses; nothing created yet.
    fn plan(names: &[&str]) -> Result<Lab, NetnsError> {
        validate_names(names)?;
        let root = Arc::new(open_netns("/proc/thread-self/ns/net")?);
        let tag = format!(
            "{:x}x{:x}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed)
        );
        let [a, b, c, _] = SUBNET.octets();
        let mut hosts = Vec::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            let octet = FIRST_HOST_OCTET + u8::try_from(index).expect("at most MAX_HOSTS hosts");
            hosts.push(Host {
                name: (*name).to_string(),
                netns: format!("{NETNS_PREFIX}{tag}-{name}"),
                veth: checked_ifname(format!("{VETH_PREFIX}{tag}h{index}"))?,
                address: Ipv4Addr::new(a, b, c, octet),
                handle: None,
            });
        }
        Ok(Lab {
            bridge: checked_ifname(format!("{BRIDGE_PREFIX}{tag}"))?,
            hosts,
            root,
        })
    }

    /// Creates the bridge and the hosts. On failure, dropping the lab
    /// removes what was created.
    fn build(&mut self) -> Result<(), NetnsError> {
        let bridge = self.bridge.clone();
        self.ip(&["link", "add", &bridge, "type", "bridge"])?;
        // No IPv6 link-local address: no router solicitations or DAD on the
        // bridge; the lab is IPv4 only and silent unless tested.
        self.ip(&["link", "set", &bridge, "addrgenmode", "none"])?;
        self.ip(&["link", "set", &bridge, "up"])?;
        for index in 0..self.hosts.len() {
            self.add_host(index)?;
        }
        Ok(())
    }

    fn add_host(&mut self, index: usize) -> Result<(), NetnsError> {
        let Host {
            netns,
            veth,
            address,
            ..
        } = &self.hosts[index];
        let (netns, veth) = (netns.clone(), veth.clone());
        let address = format!("{address}/{PREFIX_LEN}");
        let bridge = self.bridge.clone();
        self.ip(&["netns", "add", &netns])?;
        let path = format!("{NETNS_DIR}/{netns}");
        self.hosts[index].handle = Some(Arc::new(open_netns(&path)?));
        self.ip(&[
            "link",
            "add",
            &veth,
            "type",
            "veth",
            "peer",
            "name",
            HOST_IFNAME,
            "netns",
            &netns,
        ])?;
        self.ip(&["link", "set", &veth, "addrgenmode", "none"])?;
        self.ip(&["link", "set", &veth, "master", &bridge, "up"])?;
        self.ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        self.ip(&[
            "-n",
            &netns,
            "link",
            "set",
            HOST_IFNAME,
            "addrgenmode",
            "none",
        ])?;
        self.ip(&["-n", &netns, "addr", "add", &address, "dev", HOST_IFNAME])?;
        self.ip(&["-n", &netns, "link", "set", HOST_IFNAME, "up"])?;
        Ok(())
    }

    /// The hosts' names, in creation order.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(|h| h.name.as_str())
    }

    /// The address of `host` on the lab network.
    pub fn address(&self, host: &str) -> Result<Ipv4Addr, NetnsError> {
        Ok(self.host(host)?.address)
    }

    /// The name of `host`'s network namespace (`ip netns exec NAME …`, for
    /// poking at a lab by hand).
    pub fn netns(&self, host: &str) -> Result<&str, NetnsError> {
        Ok(&self.host(host)?.netns)
    }

    /// A command that runs `program` on `host`: the child enters the host's
    /// network namespace between fork and exec. Unlike `ip netns exec`, it
    /// keeps the machine's mounts (`ip netns exec` remounts `/sys`, which
    /// would hide the cgroup hierarchies an agent needs).
    pub fn command(&self, host: &str, program: impl AsRef<OsStr>) -> Result<Command, NetnsError> {
        let mut command = Command::new(program);
        enter_on_exec(&mut command, self.handle(host)?);
        Ok(command)
    }

    /// Runs `f` on a new thread inside `host`'s network namespace and
    /// returns its result; a panic in `f` is resumed on the caller. Sockets
    /// that thread opens, and threads it starts (e.g. a current-thread tokio
    /// runtime's blocking pool), are on `host`.
    pub fn run_in<T, F>(&self, host: &str, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let handle = self.handle(host)?;
        std::thread::scope(|scope| {
            let thread = scope.spawn(move || {
                // Only this thread moves: the network namespace is a
                // per-thread attribute (setns(2)).
                setns(handle.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| {
                    NetnsError::Enter {
                        host: host.to_string(),
                        source,
                    }
                })?;
                Ok(f())
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Cuts `host` off the network: its veth's bridge end goes down, so
    /// frames to and from the host are silently dropped (like a pulled
    /// cable: no RST, no ICMP; connections just stall).
    pub fn link_down(&self, host: &str) -> Result<(), NetnsError> {
        let veth = self.host(host)?.veth.clone();
        self.ip(&["link", "set", &veth, "down"]).map(drop)
    }

    /// Reconnects a host cut off with [`Lab::link_down`].
    pub fn link_up(&self, host: &str) -> Result<(), NetnsError> {
        let veth = self.host(host)?.veth.clone();
        self.ip(&["link", "set", &veth, "up"]).map(drop)
    }

    /// Whether anything of this lab (bridge, veths, namespaces) still exists.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        if self.link_exists(&self.bridge) {
            left.push(format!("bridge {}", self.bridge));
        }
        for host in &self.hosts {
            if self.link_exists(&host.veth) {
                left.push(format!("veth {}", host.veth));
            }
            if Path::new(NETNS_DIR).join(&host.netns).exists() {
                left.push(format!("netns {}", host.netns));
            }
        }
        left
    }

    /// Deletes the veths (each takes its namespace end along), the
    /// namespaces and the bridge; what does not exist is skipped. Tries
    /// everything and returns the first failure. Called by `Drop`.
    pub fn teardown(&mut self) -> Result<(), NetnsError> {
        let _serial = IP_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let mut first_error = None;
        let mut note = |result: Result<String, NetnsError>| {
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        };
        for host in &self.hosts {
            if self.link_exists(&host.veth) {
                note(self.ip(&["link", "del", &host.veth]));
            }
            if Path::new(NETNS_DIR).join(&host.netns).exists() {
                note(self.ip(&["netns", "del", &host.netns]));
            }
        }
        if self.link_exists(&self.bridge) {
            note(self.ip(&["link", "del", &self.bridge]));
        }
        for host in &mut self.hosts {
            host.handle = None;
        }
        first_error.map_or(Ok(()), Err)
    }

    fn host(&self, name: &str) -> Result<&Host, NetnsError> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| NetnsError::UnknownHost(name.to_string()))
    }

    fn handle(&self, host: &str) -> Result<Arc<OwnedFd>, NetnsError> {
        self.host(host)?
            .handle
            .clone()
            .ok_or_else(|| NetnsError::UnknownHost(host.to_string()))
    }

    fn link_exists(&self, name: &str) -> bool {
        self.ip(&["link", "show", "dev", name]).is_ok()
    }

    /// Refuses a subnet the machine already has an address or a route in.
    fn check_subnet_free(&self) -> Result<(), NetnsError> {
        let subnet = format!("{SUBNET}/{PREFIX_LEN}");
        let addresses = self.ip(&["-4", "-o", "addr", "show", "to", &subnet])?;
        let routes = self.ip(&["-4", "route", "show", "root", &subnet])?;
        match addresses.lines().chain(routes.lines()).next() {
            Some(line) => Err(NetnsError::SubnetInUse(line.trim().to_string())),
            None => Ok(()),
        }
    }

    /// Removes namespaces, veths and bridges of labs whose process died
    /// without tearing down (SIGKILL, a crash). Best effort.
    fn sweep_stale(&self) {
        let netns = std::fs::read_dir(NETNS_DIR)
            .map(|dir| {
                dir.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for name in netns {
            if owner_is_dead(&name, NETNS_PREFIX) {
                let _ = self.ip(&["netns", "del", &name]);
            }
        }
        let links = self.ip(&["-o", "link", "show"]).unwrap_or_default();
        for line in links.lines() {
            // "7: mlv1a2bx0h1@if2: <BROADCAST,…"
            let Some(name) = line.split(": ").nth(1) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            if owner_is_dead(name, VETH_PREFIX) || owner_is_dead(name, BRIDGE_PREFIX) {
                let _ = self.ip(&["link", "del", name]);
            }
        }
    }

    /// Runs `ip args` in the lab's root namespace; its stdout.
    fn ip(&self, args: &[&str]) -> Result<String, NetnsError> {
        let mut command = Command::new(ip_program());
        command.args(args);
        enter_on_exec(&mut command, self.root.clone());
        let output = command.output().map_err(|source| NetnsError::Spawn {
            args: args.join(" "),
            source,
        })?;
        if !output.status.success() {
            return Err(NetnsError::Ip {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            eprintln!("mesos-lab: teardown incomplete: {error}");
        }
    }
}

/// Makes `command`'s child enter the namespace `handle` before exec.
fn enter_on_exec(command: &mut Command, handle: Arc<OwnedFd>) {
    // SAFETY: the hook runs in the forked child before exec and only calls
    // setns(2), which is async-signal-safe, on an fd the closure keeps open;
    // it neither allocates nor takes locks.
    unsafe {
        command.pre_exec(move || {
            setns(handle.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
        });
    }
}

fn open_netns(path: &str) -> Result<OwnedFd, NetnsError> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| NetnsError::Open {
            path: path.to_string(),
            source,
        })
}

/// The iproute2 `ip` binary the lab runs (sbin is not on every PATH).
pub fn ip_program() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("ip")
}

fn validate_names(names: &[&str]) -> Result<(), NetnsError> {
    if names.is_empty() || names.len() > MAX_HOSTS {
        return Err(NetnsError::BadHosts(format!(
            "{} hosts; between 1 and {MAX_HOSTS} are possible",
            names.len()
        )));
    }
    for (index, name) in names.iter().enumerate() {
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(NetnsError::BadHosts(format!(
                "{name:?} is not made of letters, digits and '-'"
            )));
        }
        if names[..index].contains(name) {
            return Err(NetnsError::BadHosts(format!("{name:?} appears twice")));
        }
    }
    Ok(())
}

fn checked_ifname(name: String) -> Result<String, NetnsError> {
    if name.len() > MAX_IFNAME {
        return Err(NetnsError::NameTooLong(name));
    }
    Ok(name)
}

/// Whether `name` is `<prefix><pid>x…` of a process that no longer exists.
fn owner_is_dead(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let Some((pid, _)) = rest.split_once('x') else {
        return false;
    };
    match u32::from_str_radix(pid, 16) {
        Ok(pid) => pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_checked() {
        assert!(validate_names(&["master", "agent-1"]).is_ok());
        assert!(matches!(validate_names(&[]), Err(NetnsError::BadHosts(_))));
        assert!(matches!(
            validate_names(&["a", "a"]),
            Err(NetnsError::BadHosts(m)) if m.contains("twice")
        ));
        assert!(matches!(
            validate_names(&["a b"]),
            Err(NetnsError::BadHosts(_))
        ));
    }

    #[test]
    fn interface_names_fit_ifnamsiz() {
        // pid_max is at most 2^22 = 0x400000: six hex digits.
        assert!(checked_ifname("mlv400000xfffh9".into()).is_ok());
        assert!(matches!(
            checked_ifname("mlv400000x1000h9".into()),
            Err(NetnsError::NameTooLong(_))
        ));
    }

    #[test]
    fn a_lab_that_fails_half_way_is_removed() {
        if let Some(reason) = unavailable() {
            eprintln!("skipping: {reason}");
            return;
        }
        // Occupy the namespace name the next lab's host will want. No other
        // test of this binary builds labs, so the counter is ours.
        let next = NEXT_LAB.load(Ordering::Relaxed);
        let taken = format!("{NETNS_PREFIX}{:x}x{next:x}-a", std::process::id());
        let status = Command::new(ip_program())
            .args(["netns", "add", &taken])
            .status()
            .expect("run ip");
        assert!(status.success());
        // On another thread: a deadlock in the failure path must fail the
        // test, not hang it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = Lab::new(&["a"]).map(|lab| lab.bridge.clone());
            let _ = tx.send(result);
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("Lab::new returns");
        // Normally already gone: the failed lab's teardown removes it.
        let _ = Command::new(ip_program())
            .args(["netns", "del", &taken])
            .output();
        assert!(
            matches!(&result, Err(NetnsError::Ip { args, .. }) if args.contains(&taken)),
            "{result:?}"
        );
        let bridge = format!("{BRIDGE_PREFIX}{:x}x{next:x}", std::process::id());
        let shown = Command::new(ip_program())
            .args(["link", "show", "dev", &bridge])
            .output()
            .expect("run ip");
        assert!(!shown.status.success(), "bridge {bridge} was left behind");
    }

    #[test]
    fn only_leftovers_of_dead_processes_are_stale() {
        let me = std::process::id();
        assert!(!owner_is_dead(
            &format!("mesos-lab-{me:x}x0-master"),
            NETNS_PREFIX
        ));
        // Pid 1 always exists.
        assert!(!owner_is_dead("mlb1x0", BRIDGE_PREFIX));
        // Above the kernel's pid_max limit (2^22): never a live process.
        assert!(owner_is_dead("mlb400001x3", BRIDGE_PREFIX));
        assert!(!owner_is_dead("eth0", BRIDGE_PREFIX));
        assert!(!owner_is_dead("mlbridge", BRIDGE_PREFIX));
    }
}
