//! Who the executor runs as: rlimits, capabilities, user and groups, and the
//! loopback device of a new network namespace.

use caps::{CapSet, CapsHashSet};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Capabilities, PosixRlimitType, Process, User};

use super::Failure;

/// Applies `process.rlimits`.
pub(super) fn set_rlimits(process: &Process) -> Result<(), Failure> {
    for rlimit in process.rlimits().as_deref().unwrap_or_default() {
        let resource = rlimit_resource(rlimit.typ());
        let limit = libc::rlimit {
            rlim_cur: rlimit.soft(),
            rlim_max: rlimit.hard(),
        };
        // SAFETY: `limit` is a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(Failure::sys(
                nix::errno::Errno::last(),
                format!(
                    "setrlimit {} soft={} hard={}",
                    rlimit.typ(),
                    rlimit.soft(),
                    rlimit.hard()
                ),
            ));
        }
    }
    Ok(())
}

fn rlimit_resource(typ: PosixRlimitType) -> libc::__rlimit_resource_t {
    match typ {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Converts OCI capability names to the `caps` crate's.
fn to_caps(set: Option<&Capabilities>) -> Result<CapsHashSet, Failure> {
    set.into_iter()
        .flatten()
        .map(|cap| {
            format!("CAP_{cap}")
                .parse()
                .map_err(|_| Failure::msg(format!("unknown capability 'CAP_{cap}'")))
        })
        .collect()
}

fn caps_error(context: &str) -> impl FnOnce(caps::errors::CapsError) -> Failure + '_ {
    move |error| Failure::msg(format!("{context}: {error}"))
}

/// Drops from the bounding set every capability not in `process`'s bounding
/// set. Runs as root, before the user switch (needs `CAP_SETPCAP`).
pub(super) fn limit_bounding_set(process: &Process) -> Result<(), Failure> {
    let Some(wanted) = process.capabilities() else {
        return Ok(());
    };
    let keep = to_caps(wanted.bounding().as_ref())?;
    let current =
        caps::read(None, CapSet::Bounding).map_err(caps_error("read the bounding set"))?;
    for cap in current.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(caps_error(&format!("drop {cap} from the bounding set")))?;
    }
    Ok(())
}

/// Sets supplementary groups, gid and uid. Switching away from uid 0 without
/// `SECBIT_KEEP_CAPS` clears the permitted, effective and ambient sets.
pub(super) fn switch_user(user: &User) -> Result<(), Failure> {
    let groups: Vec<Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .copied()
        .map(Gid::from_raw)
        .collect();
    let name = user
        .username()
        .clone()
        .unwrap_or_else(|| user.uid().to_string());
    nix::unistd::setgroups(&groups)
        .map_err(|e| Failure::sys(e, format!("setgroups for user '{name}'")))?;
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| Failure::sys(e, format!("setresgid {gid} for user '{name}'")))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| Failure::sys(e, format!("setresuid {uid} for user '{name}'")))?;
    if let Some(umask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    }
    Ok(())
}

/// Sets the effective, inheritable, permitted and ambient sets. The effective
/// set shrinks first: the kernel requires effective ⊆ permitted at every step.
pub(super) fn set_capabilities(process: &Process) -> Result<(), Failure> {
    let Some(wanted) = process.capabilities() else {
        return Ok(());
    };
    let effective = to_caps(wanted.effective().as_ref())?;
    let inheritable = to_caps(wanted.inheritable().as_ref())?;
    let permitted = to_caps(wanted.permitted().as_ref())?;
    let ambient = to_caps(wanted.ambient().as_ref())?;
    caps::set(None, CapSet::Effective, &effective).map_err(caps_error("set the effective set"))?;
    caps::set(None, CapSet::Inheritable, &inheritable)
        .map_err(caps_error("set the inheritable set"))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(caps_error("set the permitted set"))?;
    caps::clear(None, CapSet::Ambient).map_err(caps_error("clear the ambient set"))?;
    for cap in ambient {
        caps::raise(None, CapSet::Ambient, cap)
            .map_err(caps_error(&format!("raise ambient {cap}")))?;
    }
    Ok(())
}

/// Brings `lo` up: a fresh network namespace has it down.
pub(super) fn loopback_up() -> Result<(), Failure> {
    // SAFETY: socket() takes integers and returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Failure::sys(nix::errno::Errno::last(), "socket for lo"));
    }
    // SAFETY: `fd` was just returned by socket() and is owned here.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        // ASCII bytes fit in c_char.
        *dst = *src as libc::c_char;
    }
    let raw = std::os::fd::AsRawFd::as_raw_fd(&socket);
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `request`, which is a
    // valid ifreq; the ifru union's flags member is the one these use.
    unsafe {
        if libc::ioctl(raw, libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(Failure::sys(nix::errno::Errno::last(), "SIOCGIFFLAGS lo"));
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(raw, libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(Failure::sys(
                nix::errno::Errno::last(),
                "SIOCSIFFLAGS lo up",
            ));
        }
    }
    Ok(())
}
