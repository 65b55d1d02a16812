//! The narrow cgroupfs layer: every file and directory operation of the drivers goes
//! through [`CgroupFs`], so the drivers run unchanged against a fake cgroupfs in a
//! temporary directory (unit tests, callers' tests) and against the kernel.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `rmdir` is retried on EBUSY, and how often: Mesos's `cgroups2::destroy`
/// (modelled on crun) retries every 1 ms up to 5000 times. A cgroup whose last process
/// was just killed stays busy until the kernel has finished tearing the task down.
pub(crate) const RMDIR_RETRY_INTERVAL: Duration = Duration::from_millis(1);
pub(crate) const RMDIR_MAX_ATTEMPTS: u32 = 5000;

/// Errors of a single cgroupfs operation; each carries the path involved.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// Reading a cgroup file failed.
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    /// Writing a value into a cgroup file failed (EINVAL/ERANGE: bad value; EBUSY: the
    /// no-internal-process rule; ENOENT: controller not enabled in the parent).
    #[error("writing {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    /// Creating a cgroup directory failed.
    #[error("creating cgroup {path}: {source}")]
    Mkdir { path: PathBuf, source: io::Error },
    /// Removing a cgroup directory failed.
    #[error("removing cgroup {path}: {source}")]
    Rmdir { path: PathBuf, source: io::Error },
    /// `rmdir` kept failing with EBUSY.
    #[error("removing cgroup {path}: still busy after {attempts} attempts, 1 ms apart")]
    RmdirBusy { path: PathBuf, attempts: u32 },
    /// Listing a cgroup directory failed.
    #[error("listing cgroup {path}: {source}")]
    List { path: PathBuf, source: io::Error },
    /// Opening a cgroup directory (for `CLONE_INTO_CGROUP`) failed.
    #[error("opening cgroup directory {path}: {source}")]
    OpenDir { path: PathBuf, source: io::Error },
    /// A cgroup file held something we could not parse.
    #[error("unexpected content in {path}: {content:?}")]
    Parse { path: PathBuf, content: String },
}

impl FsError {
    /// The OS error number behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            FsError::Read { source, .. }
            | FsError::Write { source, .. }
            | FsError::Mkdir { source, .. }
            | FsError::Rmdir { source, .. }
            | FsError::List { source, .. }
            | FsError::OpenDir { source, .. } => source.raw_os_error(),
            FsError::RmdirBusy { .. } => Some(libc::EBUSY),
            FsError::Parse { .. } => None,
        }
    }
}

/// Where cgroup files live: the kernel's cgroupfs, or a fake one on a plain directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Kernel,
    Fake,
}

/// Access to cgroup files and directories.
///
/// The fake mode emulates the two cgroupfs behaviours the drivers rely on that a plain
/// directory lacks: `mkdir` creates an empty `cgroup.procs`, and `rmdir` removes the
/// interface files with the directory. Writes create missing files (the kernel would
/// refuse: interface files only exist when their controller is enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupFs {
    mode: Mode,
}

impl CgroupFs {
    /// The kernel's cgroupfs.
    pub fn kernel() -> Self {
        CgroupFs { mode: Mode::Kernel }
    }

    /// A fake cgroupfs on ordinary directories, for tests without root.
    pub fn fake() -> Self {
        CgroupFs { mode: Mode::Fake }
    }

    /// True for the fake cgroupfs.
    pub fn is_fake(&self) -> bool {
        self.mode == Mode::Fake
    }

    /// Reads a whole cgroup file.
    pub(crate) fn read(&self, path: &Path) -> Result<String, FsError> {
        fs::read_to_string(path).map_err(|source| FsError::Read {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads a cgroup file that may be absent (controller or kernel feature missing).
    pub(crate) fn read_opt(&self, path: &Path) -> Result<Option<String>, FsError> {
        match fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(FsError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Reads a file holding one unsigned integer, or `max` (returned as `None`).
    pub(crate) fn read_u64_or_max(&self, path: &Path) -> Result<Option<u64>, FsError> {
        let text = self.read(path)?;
        parse_u64_or_max(text.trim()).ok_or_else(|| FsError::Parse {
            path: path.to_owned(),
            content: text,
        })
    }

    /// Reads a file holding one signed integer (v1 files use -1 for "unlimited").
    pub(crate) fn read_i64(&self, path: &Path) -> Result<i64, FsError> {
        let text = self.read(path)?;
        text.trim().parse().map_err(|_| FsError::Parse {
            path: path.to_owned(),
            content: text.clone(),
        })
    }

    /// Writes `value` into a cgroup file with a single `write(2)`, as the kernel expects.
    pub(crate) fn write(&self, path: &Path, value: &str) -> Result<(), FsError> {
        let mut options = OpenOptions::new();
        options.write(true);
        if self.is_fake() {
            options.create(true).truncate(true);
        }
        options
            .open(path)
            .and_then(|mut file| file.write_all(value.as_bytes()))
            .map_err(|source| FsError::Write {
                path: path.to_owned(),
                value: value.to_owned(),
                source,
            })
    }

    /// True if the file or directory exists.
    pub(crate) fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    /// True if the kernel provides the interface file `path` (it depends on the kernel
    /// version and on `swapaccount`); the fake cgroupfs provides every file.
    pub(crate) fn supports(&self, path: &Path) -> bool {
        self.is_fake() || path.exists()
    }

    /// The pids of `dir` and of every cgroup below it.
    pub(crate) fn procs_recursive(&self, dir: &Path) -> Result<Vec<i32>, FsError> {
        let mut pids = self.procs(dir)?;
        for child in self.subdirs(dir)? {
            pids.extend(self.procs_recursive(&dir.join(child))?);
        }
        Ok(pids)
    }

    /// Creates one cgroup directory; its parent must exist.
    pub(crate) fn mkdir(&self, path: &Path) -> Result<(), FsError> {
        fs::create_dir(path).map_err(|source| FsError::Mkdir {
            path: path.to_owned(),
            source,
        })?;
        if self.is_fake() {
            self.write(&path.join("cgroup.procs"), "")?;
        }
        Ok(())
    }

    /// Creates a cgroup directory and any missing ancestors.
    pub(crate) fn mkdir_all(&self, path: &Path) -> Result<(), FsError> {
        if path.is_dir() {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            self.mkdir_all(parent)?;
        }
        match self.mkdir(path) {
            Err(FsError::Mkdir { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                Ok(())
            }
            other => other,
        }
    }

    /// Names of the child cgroups of `path` (empty if `path` does not exist).
    pub(crate) fn subdirs(&self, path: &Path) -> Result<Vec<String>, FsError> {
        let entries = match fs::read_dir(path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(FsError::List {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| FsError::List {
                path: path.to_owned(),
                source,
            })?;
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Opens a cgroup directory for `clone3(CLONE_INTO_CGROUP)`. Not `O_PATH`: the
    /// kernel resolves the fd with `fdget()`, which rejects `O_PATH` files.
    pub(crate) fn open_dir(&self, path: &Path) -> Result<OwnedFd, FsError> {
        File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)
            .map(OwnedFd::from)
            .map_err(|source| FsError::OpenDir {
                path: path.to_owned(),
                source,
            })
    }

    /// The pids in a cgroup's `cgroup.procs` (empty if the cgroup is gone).
    pub(crate) fn procs(&self, dir: &Path) -> Result<Vec<i32>, FsError> {
        let path = dir.join("cgroup.procs");
        let Some(text) = self.read_opt(&path)? else {
            return Ok(Vec::new());
        };
        text.split_whitespace()
            .map(|pid| {
                pid.parse().map_err(|_| FsError::Parse {
                    path: path.clone(),
                    content: text.clone(),
                })
            })
            .collect()
    }

    /// Removes `dir` and every cgroup below it, deepest first, retrying each `rmdir` on
    /// EBUSY every 1 ms up to [`RMDIR_MAX_ATTEMPTS`] times. A missing `dir` is success.
    pub(crate) async fn remove_tree(&self, dir: &Path) -> Result<(), FsError> {
        for child in self.subdirs(dir)? {
            Box::pin(self.remove_tree(&dir.join(child))).await?;
        }
        self.rmdir_retrying(dir).await
    }

    async fn rmdir_retrying(&self, dir: &Path) -> Result<(), FsError> {
        for _ in 0..RMDIR_MAX_ATTEMPTS {
            match self.rmdir(dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    tokio::time::sleep(RMDIR_RETRY_INTERVAL).await;
                }
                Err(source) => {
                    return Err(FsError::Rmdir {
                        path: dir.to_owned(),
                        source,
                    })
                }
            }
        }
        Err(FsError::RmdirBusy {
            path: dir.to_owned(),
            attempts: RMDIR_MAX_ATTEMPTS,
        })
    }

    /// Blocking variant of [`CgroupFs::remove_tree`], for clean-up paths outside async
    /// code (a failed `prepare`, drop guards).
    pub(crate) fn remove_tree_blocking(&self, dir: &Path) -> Result<(), FsError> {
        for child in self.subdirs(dir)? {
            self.remove_tree_blocking(&dir.join(child))?;
        }
        for _ in 0..RMDIR_MAX_ATTEMPTS {
            match self.rmdir(dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(RMDIR_RETRY_INTERVAL);
                }
                Err(source) => {
                    return Err(FsError::Rmdir {
                        path: dir.to_owned(),
                        source,
                    })
                }
            }
        }
        Err(FsError::RmdirBusy {
            path: dir.to_owned(),
            attempts: RMDIR_MAX_ATTEMPTS,
        })
    }

    /// One `rmdir`. On the fake cgroupfs the interface files go first, as they vanish
    /// with the directory on the real one.
    fn rmdir(&self, dir: &Path) -> io::Result<()> {
        if self.is_fake() && dir.is_dir() {
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    fs::remove_file(entry.path())?;
                }
            }
        }
        fs::remove_dir(dir)
    }
}

/// Parses `"max"` (unlimited, `None`) or an unsigned integer.
pub(crate) fn parse_u64_or_max(text: &str) -> Option<Option<u64>> {
    if text == "max" {
        Some(None)
    } else {
        text.parse().ok().map(Some)
    }
}

/// Parses a flat-keyed cgroup file (`memory.stat`, `cpu.stat`, `memory.events`,
/// `cpuacct.stat`, `memory.oom_control`): one `key value` pair per line.
pub(crate) fn parse_flat_keyed(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|line| {
        let mut fields = line.split_whitespace();
        let key = fields.next()?;
        let value = fields.next()?.parse().ok()?;
        Some((key, value))
    })
}

/// The value of `key` in a flat-keyed cgroup file.
pub(crate) fn flat_keyed_value(text: &str, key: &str) -> Option<u64> {
    parse_flat_keyed(text)
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files_parse_by_key() {
        let text = "usage_usec 120\nuser_usec 100\nsystem_usec 20\nbogus\n";
        assert_eq!(flat_keyed_value(text, "user_usec"), Some(100));
        assert_eq!(flat_keyed_value(text, "system_usec"), Some(20));
        assert_eq!(flat_keyed_value(text, "nr_periods"), None);
        assert_eq!(flat_keyed_value(text, "bogus"), None);
    }

    #[test]
    fn max_or_number() {
        assert_eq!(parse_u64_or_max("max"), Some(None));
        assert_eq!(parse_u64_or_max("1024"), Some(Some(1024)));
        assert_eq!(parse_u64_or_max("-1"), None);
    }

    #[tokio::test]
    async fn fake_fs_emulates_cgroupfs_mkdir_and_rmdir() {
        let dir = tempfile::tempdir().unwrap();
        let fs = CgroupFs::fake();
        let cg = dir.path().join("a/b/c");
        fs.mkdir_all(&cg).unwrap();
        assert_eq!(fs.procs(&cg).unwrap(), Vec::<i32>::new());
        fs.write(&cg.join("memory.max"), "1024").unwrap();
        fs.remove_tree(&dir.path().join("a")).await.unwrap();
        assert!(!dir.path().join("a").exists());
    }

    #[test]
    fn kernel_writes_never_create_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = CgroupFs::kernel()
            .write(&dir.path().join("cpu.max"), "max")
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert!(err.to_string().contains("cpu.max"), "{err}");
    }
}
