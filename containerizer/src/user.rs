//! Resolving the task user on the host, before the clone.
//!
//! Like Mesos (launch.cpp resolves the user before `chroot`), names are looked
//! up in the host's user database, not the image's, and the numeric IDs go
//! into config.json, so the helper never calls NSS.

use std::ffi::CString;

use nix::unistd::{getgrouplist, Gid, Uid, User};

/// A user with everything needed to switch to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The user name (or the uid when the user has no passwd entry).
    pub name: String,
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplementary groups, including the primary gid.
    pub groups: Vec<u32>,
}

/// A user that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// No passwd entry.
    #[error("user '{0}' does not exist")]
    NotFound(String),
    /// The lookup itself failed.
    #[error("failed to look up user '{user}': {errno}")]
    Lookup {
        /// The user name.
        user: String,
        /// The failure.
        errno: nix::errno::Errno,
    },
}

impl UserError {
    /// The errno of a failed lookup.
    pub fn errno(&self) -> Option<i32> {
        match self {
            UserError::NotFound(_) => None,
            UserError::Lookup { errno, .. } => Some(*errno as i32),
        }
    }
}

/// Resolves `name` to uid, gid and supplementary groups.
pub fn resolve(name: &str) -> Result<ResolvedUser, UserError> {
    let lookup = |errno| UserError::Lookup {
        user: name.to_owned(),
        errno,
    };
    let user = User::from_name(name)
        .map_err(lookup)?
        .ok_or_else(|| UserError::NotFound(name.to_owned()))?;
    let cname = CString::new(name).map_err(|_| UserError::NotFound(name.to_owned()))?;
    let groups = getgrouplist(&cname, user.gid).map_err(lookup)?;
    Ok(ResolvedUser {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups: groups.into_iter().map(Gid::as_raw).collect(),
    })
}

/// The agent's own user, for `--switch_user=false` or tasks without a user.
pub fn current() -> ResolvedUser {
    let uid = Uid::current();
    let gid = Gid::current();
    let name = User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |user| user.name);
    ResolvedUser {
        name,
        uid: uid.as_raw(),
        gid: gid.as_raw(),
        groups: vec![gid.as_raw()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_with_its_groups() {
        let root = resolve("root").expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0));
    }

    #[test]
    fn unknown_user_is_not_found() {
        let error = resolve("no-such-user-mesos-rs").expect_err("unknown user");
        assert!(matches!(error, UserError::NotFound(ref name) if name == "no-such-user-mesos-rs"));
    }
}
