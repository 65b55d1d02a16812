//! Pid checkpoints: `<runtime_dir>/containers/<id>/pid` always, and Mesos's
//! `meta/.../runs/<cid>/pids/forked.pid` for checkpointing frameworks. Both
//! hold the pid in decimal, as Mesos writes them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A checkpoint that could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("{action} pid checkpoint '{}': {source}", path.display())]
pub struct CheckpointError {
    /// What was being done.
    pub action: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The failure.
    #[source]
    pub source: io::Error,
}

/// Writes `pid` to `path` atomically (a reader never sees a partial file).
pub fn write_pid(path: &Path, pid: i32) -> Result<(), CheckpointError> {
    let error = |source| CheckpointError {
        action: "write",
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(error)?;
    }
    let staging = path.with_extension("tmp");
    fs::write(&staging, pid.to_string()).map_err(error)?;
    fs::rename(&staging, path).map_err(error)
}

/// Reads a pid written by [`write_pid`] (or by Mesos).
pub fn read_pid(path: &Path) -> Result<i32, CheckpointError> {
    let text = fs::read_to_string(path).map_err(|source| CheckpointError {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    text.trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| CheckpointError {
            action: "parse",
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, format!("not a pid: {text:?}")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_round_trips_and_garbage_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pids/forked.pid");
        write_pid(&path, 4242).expect("write");
        assert_eq!(fs::read_to_string(&path).expect("file"), "4242");
        assert_eq!(read_pid(&path).expect("read"), 4242);
        fs::write(&path, "x").expect("garbage");
        assert_eq!(read_pid(&path).expect_err("garbage").action, "parse");
    }
}
