//! The sandbox: `<work_dir>/slaves/.../runs/<cid>`, its `runs/latest` link and
//! the `stdout`/`stderr` files the executor writes to (Mesos's default
//! sandbox container logger).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::paths::ContainerIds;
use crate::user::ResolvedUser;

/// Mode of the sandbox: the task user and its group only.
const SANDBOX_MODE: u32 = 0o750;

/// A sandbox that could not be created, naming the path.
#[derive(Debug, thiserror::Error)]
#[error("{action} '{path}': {source}")]
pub struct SandboxError {
    /// What was being done.
    pub action: &'static str,
    /// The path involved.
    pub path: PathBuf,
    /// The failure.
    #[source]
    pub source: io::Error,
}

fn wrap<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SandboxError + 'a {
    move |source| SandboxError {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Creates the sandbox for `ids` owned by `user`, points `runs/latest` at it
/// and creates `stdout` and `stderr`; returns the sandbox path.
pub fn create(
    work_dir: &Path,
    ids: &ContainerIds,
    user: &ResolvedUser,
) -> Result<PathBuf, SandboxError> {
    let runs = ids.runs_dir(work_dir);
    fs::create_dir_all(&runs).map_err(wrap("create directory", &runs))?;

    let sandbox = ids.sandbox_dir(work_dir);
    DirBuilder::new()
        .mode(SANDBOX_MODE)
        .create(&sandbox)
        .map_err(wrap("create sandbox", &sandbox))?;
    // The mode passed to mkdir is filtered by the umask; set it exactly.
    fs::set_permissions(&sandbox, fs::Permissions::from_mode(SANDBOX_MODE))
        .map_err(wrap("chmod sandbox", &sandbox))?;
    chown(&sandbox, user)?;

    for name in ["stdout", "stderr"] {
        let path = sandbox.join(name);
        create_log(&path)?;
        chown(&path, user)?;
    }

    link_latest(&runs, &ids.container_id)?;
    Ok(sandbox)
}

fn create_log(path: &Path) -> Result<File, SandboxError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o640)
        .open(path)
        .map_err(wrap("create", path))
}

fn chown(path: &Path, user: &ResolvedUser) -> Result<(), SandboxError> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).map_err(wrap("chown", path))
}

/// Replaces `runs/latest` atomically: a new link is renamed over the old one,
/// so readers never see it missing.
fn link_latest(runs: &Path, container_id: &str) -> Result<(), SandboxError> {
    let latest = runs.join("latest");
    let staging = runs.join(format!(".latest.{container_id}"));
    let _ = fs::remove_file(&staging);
    std::os::unix::fs::symlink(container_id, &staging).map_err(wrap("symlink", &staging))?;
    fs::rename(&staging, &latest).map_err(wrap("rename onto", &latest))
}

/// Opens the sandbox's stdout and stderr for appending, close-on-exec.
pub fn open_logs(sandbox: &Path) -> Result<(File, File), SandboxError> {
    let open = |name: &str| {
        let path = sandbox.join(name);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| SandboxError {
                action: "open",
                path,
                source,
            })
    };
    Ok((open("stdout")?, open("stderr")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn ids(container_id: &str) -> ContainerIds {
        ContainerIds {
            agent_id: "agent".into(),
            framework_id: "framework".into(),
            executor_id: "executor".into(),
            container_id: container_id.into(),
        }
    }

    #[test]
    fn sandbox_is_owned_by_the_user_and_latest_follows_the_newest_run() {
        let work = tempfile::tempdir().expect("tempdir");
        let nobody = crate::user::resolve("nobody").expect("nobody exists");
        let first = create(work.path(), &ids("c1"), &nobody).expect("first sandbox");
        let meta = fs::metadata(&first).expect("sandbox exists");
        assert_eq!(meta.mode() & 0o7777, SANDBOX_MODE);
        assert_eq!((meta.uid(), meta.gid()), (nobody.uid, nobody.gid));
        assert_eq!(
            fs::metadata(first.join("stdout")).expect("stdout").uid(),
            nobody.uid
        );

        create(work.path(), &ids("c2"), &nobody).expect("second sandbox");
        let latest = ids("c2").runs_dir(work.path()).join("latest");
        assert_eq!(
            fs::read_link(&latest).expect("latest link"),
            Path::new("c2")
        );
        assert!(first.exists(), "older sandboxes stay");
    }

    #[test]
    fn existing_sandbox_is_an_error_naming_the_path() {
        let work = tempfile::tempdir().expect("tempdir");
        let me = crate::user::current();
        create(work.path(), &ids("c1"), &me).expect("first");
        let error = create(work.path(), &ids("c1"), &me).expect_err("reused container id");
        assert_eq!(error.path, ids("c1").sandbox_dir(work.path()));
        assert_eq!(error.source.kind(), io::ErrorKind::AlreadyExists);
    }
}
