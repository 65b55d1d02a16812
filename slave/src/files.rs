//! `/files/browse`, `/files/read`, `/files/download` and `/files/debug`, as
//! Mesos's `FilesProcess` (src/files/files.cpp), over executor sandboxes only.
//!
//! Each sandbox is attached under several names (its virtual path
//! `/frameworks/<fw>/executors/<e>/runs/latest`, its real path, and the
//! `runs/latest` path). A request resolves by longest attached prefix; the rest
//! of the path is opened with `openat2(RESOLVE_BENEATH)` relative to the
//! sandbox's directory fd, so neither `..` nor a symlink planted by a task can
//! make the agent open anything outside the sandbox, even if the task swaps
//! files while we look (no check-then-open race as with `realpath`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

/// Largest chunk `/files/read` returns, like Mesos: 16 pages.
fn max_read_length() -> u64 {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    page * 16
}

/// Why a `/files` request failed; maps onto Mesos's `FilesError` kinds.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// Bad request parameters (400).
    #[error("{0}")]
    Invalid(String),
    /// Not attached, or no such file (404).
    #[error("{0}")]
    NotFound(String),
    /// The path leaves the sandbox (403).
    #[error("{0}")]
    Forbidden(String),
    /// I/O failure on an existing file (500).
    #[error("{path}: {source}")]
    Io {
        /// The requested path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl FilesError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for FilesError {
    fn into_response(self) -> Response {
        (self.status(), format!("{self}\n")).into_response()
    }
}

/// One entry of `/files/browse`, Mesos's `model(FileInfo)`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileInfo {
    /// Requested path joined with the entry name.
    pub path: String,
    /// Hard link count.
    pub nlink: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// `ls -l` style mode, e.g. `-rw-r--r--`.
    pub mode: String,
    /// Owner name (or numeric uid).
    pub uid: String,
    /// Group name (or numeric gid).
    pub gid: String,
}

/// Result of `/files/read`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReadResult {
    /// The bytes read (lossily decoded: Mesos sends them as a JSON string).
    pub data: String,
    /// The requested offset, or the file size for `offset=-1`.
    pub offset: u64,
}

/// The attached sandboxes.
#[derive(Debug, Default)]
pub struct Files {
    /// name (virtual or real path, no trailing `/`) → canonical directory.
    attached: RwLock<BTreeMap<String, PathBuf>>,
}

/// An opened file or directory inside an attached sandbox.
struct Resolved {
    fd: OwnedFd,
    /// The path as requested, for error messages.
    requested: String,
}

fn trim_trailing_slash(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/"
    } else {
        trimmed
    }
}

impl Files {
    /// Creates an empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Exposes directory `real` under `name`. The directory is canonicalized
    /// now, so a later change of a `latest` symlink does not move the root.
    pub fn attach(&self, real: &Path, name: &str) -> std::io::Result<()> {
        let canonical = std::fs::canonicalize(real)?;
        let mut attached = self.attached.write().unwrap_or_else(|e| e.into_inner());
        attached.insert(trim_trailing_slash(name).to_string(), canonical);
        Ok(())
    }

    /// Removes `name`.
    pub fn detach(&self, name: &str) {
        let mut attached = self.attached.write().unwrap_or_else(|e| e.into_inner());
        attached.remove(trim_trailing_slash(name));
    }

    /// The attached names and their directories (`/files/debug`).
    pub fn debug(&self) -> BTreeMap<String, PathBuf> {
        self.attached
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Longest attached prefix of `path` and the remaining relative suffix.
    fn lookup(&self, path: &str) -> Result<(PathBuf, String), FilesError> {
        if path.split('/').any(|c| c == "..") {
            return Err(FilesError::Forbidden(format!(
                "'{path}' is inaccessible: '..' is not allowed"
            )));
        }
        let attached = self.attached.read().unwrap_or_else(|e| e.into_inner());
        let mut prefix = trim_trailing_slash(path);
        loop {
            if let Some(root) = attached.get(prefix) {
                let suffix = path[prefix.len()..].trim_matches('/').to_string();
                return Ok((root.clone(), suffix));
            }
            match prefix.rfind('/') {
                Some(0) if prefix != "/" => prefix = "/",
                Some(index) if index > 0 => prefix = &prefix[..index],
                _ => return Err(FilesError::NotFound(format!("'{path}' not found"))),
            }
        }
    }

    /// Opens `path` (virtual or real) without ever leaving its sandbox.
    fn resolve(&self, path: &str) -> Result<Resolved, FilesError> {
        let (root, suffix) = self.lookup(path)?;
        let io_error = |source: std::io::Error| FilesError::Io {
            path: path.to_string(),
            source,
        };
        let root_fd = nix::fcntl::open(
            &root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| match errno {
            Errno::ENOENT => FilesError::NotFound(format!("'{path}' not found")),
            other => io_error(other.into()),
        })?;
        let relative = if suffix.is_empty() { "." } else { &suffix };
        // O_NONBLOCK: a FIFO a task created must not hang the request.
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(root_fd.as_fd(), relative, how).map_err(|errno| match errno {
            Errno::ENOENT | Errno::ENOTDIR => FilesError::NotFound(format!("'{path}' not found")),
            Errno::EXDEV | Errno::ELOOP | Errno::EACCES | Errno::EPERM => {
                FilesError::Forbidden(format!("'{path}' is inaccessible: it leaves the sandbox"))
            }
            other => io_error(other.into()),
        })?;
        Ok(Resolved {
            fd,
            requested: path.to_string(),
        })
    }

    /// Lists a sandbox directory, sorted by path.
    pub fn browse(&self, path: &str) -> Result<Vec<FileInfo>, FilesError> {
        let resolved = self.resolve(path)?;
        let io_error = |source: std::io::Error| FilesError::Io {
            path: path.to_string(),
            source,
        };
        let mut dir = nix::dir::Dir::from_fd(resolved.fd)
            .map_err(|_| FilesError::Invalid(format!("'{path}' is not a directory")))?;
        let dir_fd = dir.as_fd().try_clone_to_owned().map_err(io_error)?;
        let base = trim_trailing_slash(&resolved.requested).trim_end_matches('/');
        let mut listing = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| io_error(e.into()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            // lstat semantics: a symlink's own metadata, never its target's.
            let Ok(stat) = nix::sys::stat::fstatat(
                &dir_fd,
                entry.file_name(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) else {
                continue;
            };
            listing.push(file_info(format!("{base}/{name}"), &stat));
        }
        listing.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(listing)
    }

    /// `/files/read` semantics: `offset=-1` (or none) returns the size in
    /// `offset` and no data; `length` defaults to the rest of the file; at most
    /// 16 pages are returned.
    pub fn read(
        &self,
        path: &str,
        offset: Option<i64>,
        length: Option<i64>,
    ) -> Result<ReadResult, FilesError> {
        let offset = offset.unwrap_or(-1);
        if offset < -1 {
            return Err(FilesError::Invalid(format!(
                "Negative offset provided: {offset}."
            )));
        }
        let length = match length {
            Some(l) if l < -1 => {
                return Err(FilesError::Invalid(format!(
                    "Negative length provided: {l}."
                )))
            }
            Some(-1) | None => None,
            Some(l) => Some(l.unsigned_abs()),
        };
        let mut file = self.open_regular(path, "read")?;
        let io_error = |source: std::io::Error| FilesError::Io {
            path: path.to_string(),
            source,
        };
        let size = file.seek(SeekFrom::End(0)).map_err(io_error)?;
        if offset == -1 {
            return Ok(ReadResult {
                data: String::new(),
                offset: size,
            });
        }
        let start = offset.unsigned_abs();
        let wanted = length
            .unwrap_or(size.saturating_sub(start))
            .min(max_read_length());
        if start >= size || wanted == 0 {
            return Ok(ReadResult {
                data: String::new(),
                offset: start,
            });
        }
        file.seek(SeekFrom::Start(start)).map_err(io_error)?;
        let mut data = Vec::new();
        file.take(wanted).read_to_end(&mut data).map_err(io_error)?;
        Ok(ReadResult {
            data: String::from_utf8_lossy(&data).into_owned(),
            offset: start,
        })
    }

    /// Opens a regular file for `/files/download`.
    pub fn download(&self, path: &str) -> Result<(File, String), FilesError> {
        let file = self.open_regular(path, "download")?;
        let name = Path::new(trim_trailing_slash(path))
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok((file, name))
    }

    fn open_regular(&self, path: &str, verb: &str) -> Result<File, FilesError> {
        let resolved = self.resolve(path)?;
        let file = File::from(resolved.fd);
        let metadata = file.metadata().map_err(|source| FilesError::Io {
            path: path.to_string(),
            source,
        })?;
        if metadata.is_dir() {
            return Err(FilesError::Invalid(format!("Cannot {verb} a directory.")));
        }
        if !metadata.is_file() {
            return Err(FilesError::Invalid(format!(
                "Cannot {verb} '{path}': not a regular file."
            )));
        }
        Ok(file)
    }
}

fn file_info(path: String, stat: &nix::sys::stat::FileStat) -> FileInfo {
    use nix::unistd::{Gid, Group, Uid, User};
    let uid = User::from_uid(Uid::from_raw(stat.st_uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| stat.st_uid.to_string());
    let gid = Group::from_gid(Gid::from_raw(stat.st_gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| stat.st_gid.to_string());
    FileInfo {
        path,
        nlink: stat.st_nlink,
        size: u64::try_from(stat.st_size).unwrap_or(0),
        mtime: stat.st_mtime,
        mode: mode_string(stat.st_mode),
        uid,
        gid,
    }
}

/// `ls -l` style mode string, as Mesos's `model(FileInfo)`.
pub fn mode_string(mode: u32) -> String {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFLNK => 'l',
        libc::S_IFCHR => 'c',
        libc::S_IFBLK => 'b',
        libc::S_IFIFO => 'p',
        libc::S_IFSOCK => 's',
        _ => '-',
    };
    let mut text = String::with_capacity(10);
    text.push(kind);
    for (shift, special, special_char) in [
        (6, libc::S_ISUID, 's'),
        (3, libc::S_ISGID, 's'),
        (0, libc::S_ISVTX, 't'),
    ] {
        let bits = (mode >> shift) & 0o7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        text.push(match (mode & special != 0, exec) {
            (true, true) => special_char,
            (true, false) => special_char.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    text
}

/// Query of all `/files` endpoints.
#[derive(Debug, Deserialize)]
pub struct FilesQuery {
    path: Option<String>,
    offset: Option<String>,
    length: Option<String>,
}

impl FilesQuery {
    fn path(&self) -> Result<&str, FilesError> {
        self.path
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| FilesError::Invalid("Expecting 'path=value' in query.".into()))
    }
}

fn parse_number(name: &str, value: Option<&str>) -> Result<Option<i64>, FilesError> {
    value
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|e| FilesError::Invalid(format!("Failed to parse {name}: {e}.")))
        })
        .transpose()
}

async fn browse(
    State(files): State<Arc<Files>>,
    Query(query): Query<FilesQuery>,
) -> Result<Json<Vec<FileInfo>>, FilesError> {
    let path = query.path()?.to_string();
    run_blocking(move || files.browse(&path)).await.map(Json)
}

async fn read(
    State(files): State<Arc<Files>>,
    Query(query): Query<FilesQuery>,
) -> Result<Json<ReadResult>, FilesError> {
    let path = query.path()?.to_string();
    let offset = parse_number("offset", query.offset.as_deref())?;
    let length = parse_number("length", query.length.as_deref())?;
    run_blocking(move || files.read(&path, offset, length))
        .await
        .map(Json)
}

async fn download(
    State(files): State<Arc<Files>>,
    Query(query): Query<FilesQuery>,
) -> Result<Response, FilesError> {
    let path = query.path()?.to_string();
    let (file, name) = run_blocking(move || files.download(&path)).await?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename={name}"),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn debug(State(files): State<Arc<Files>>) -> Json<BTreeMap<String, PathBuf>> {
    Json(files.debug())
}

/// File system work off the async threads.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| {
            Err(FilesError::Io {
                path: String::new(),
                source: std::io::Error::other(join.to_string()),
            })
        })
}

/// The `/files/*` routes (also reachable as `/files/*.json`, like Mesos).
pub fn router(files: Arc<Files>) -> Router {
    Router::new()
        .route("/files/browse", get(browse))
        .route("/files/browse.json", get(browse))
        .route("/files/read", get(read))
        .route("/files/read.json", get(read))
        .route("/files/download", get(download))
        .route("/files/download.json", get(download))
        .route("/files/debug", get(debug))
        .route("/files/debug.json", get(debug))
        .with_state(files)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        sandbox: PathBuf,
        outside: PathBuf,
        files: Files,
    }

    const VIRTUAL: &str = "/frameworks/F/executors/E/runs/latest";

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path().join("runs").join("C1");
        std::fs::create_dir_all(sandbox.join("sub")).unwrap();
        std::fs::write(sandbox.join("stdout"), b"hello world\n").unwrap();
        std::fs::write(sandbox.join("sub").join("inner"), b"inner").unwrap();
        let outside = dir.path().join("secret");
        std::fs::write(&outside, b"top secret").unwrap();
        let files = Files::new();
        files.attach(&sandbox, VIRTUAL).unwrap();
        files.attach(&sandbox, sandbox.to_str().unwrap()).unwrap();
        Fixture {
            _dir: dir,
            sandbox,
            outside,
            files,
        }
    }

    #[test]
    fn reads_by_virtual_and_real_path() {
        let f = fixture();
        let by_virtual = f
            .files
            .read(&format!("{VIRTUAL}/stdout"), Some(0), None)
            .unwrap();
        assert_eq!(by_virtual.data, "hello world\n");
        assert_eq!(by_virtual.offset, 0);
        let real = f.sandbox.join("stdout");
        let by_real = f
            .files
            .read(real.to_str().unwrap(), Some(6), Some(5))
            .unwrap();
        assert_eq!(by_real.data, "world");
        assert_eq!(by_real.offset, 6);
    }

    #[test]
    fn read_offset_minus_one_returns_size() {
        let f = fixture();
        let path = format!("{VIRTUAL}/stdout");
        let size = f.files.read(&path, Some(-1), None).unwrap();
        assert_eq!(
            size,
            ReadResult {
                data: String::new(),
                offset: 12
            }
        );
        let absent_offset = f.files.read(&path, None, Some(4)).unwrap();
        assert_eq!(absent_offset.offset, 12);
        let past_end = f.files.read(&path, Some(100), None).unwrap();
        assert_eq!(
            past_end,
            ReadResult {
                data: String::new(),
                offset: 100
            }
        );
        assert!(matches!(
            f.files.read(&path, Some(-2), None),
            Err(FilesError::Invalid(m)) if m.contains("Negative offset")
        ));
        assert!(matches!(
            f.files.read(&path, Some(0), Some(-5)),
            Err(FilesError::Invalid(m)) if m.contains("Negative length")
        ));
    }

    #[test]
    fn read_is_capped_at_sixteen_pages() {
        let f = fixture();
        let big = vec![b'x'; 200_000];
        std::fs::write(f.sandbox.join("big"), &big).unwrap();
        let result = f
            .files
            .read(&format!("{VIRTUAL}/big"), Some(0), None)
            .unwrap();
        assert_eq!(result.data.len() as u64, max_read_length());
    }

    #[test]
    fn dot_dot_is_forbidden_and_never_opened() {
        let f = fixture();
        let escape = format!("{VIRTUAL}/../../secret");
        assert!(matches!(
            f.files.read(&escape, Some(0), None),
            Err(FilesError::Forbidden(_))
        ));
        let real_escape = format!("{}/../../secret", f.sandbox.display());
        assert!(matches!(
            f.files.read(&real_escape, Some(0), None),
            Err(FilesError::Forbidden(_))
        ));
    }

    #[test]
    fn symlink_escapes_are_forbidden() {
        let f = fixture();
        symlink(&f.outside, f.sandbox.join("abs-link")).unwrap();
        symlink("../../secret", f.sandbox.join("rel-link")).unwrap();
        symlink("/etc", f.sandbox.join("etc-dir")).unwrap();
        symlink("/proc/self/root/etc/passwd", f.sandbox.join("magic")).unwrap();
        for name in ["abs-link", "rel-link", "etc-dir/passwd", "magic"] {
            let path = format!("{VIRTUAL}/{name}");
            let read = f.files.read(&path, Some(0), None);
            assert!(
                matches!(read, Err(FilesError::Forbidden(_))),
                "{name}: {read:?}"
            );
            let download = f.files.download(&path);
            assert!(matches!(download, Err(FilesError::Forbidden(_))), "{name}");
        }
        assert!(matches!(
            f.files.browse(&format!("{VIRTUAL}/etc-dir")),
            Err(FilesError::Forbidden(_))
        ));
    }

    #[test]
    fn symlinks_inside_the_sandbox_work() {
        let f = fixture();
        symlink("sub/inner", f.sandbox.join("inner-link")).unwrap();
        let result = f
            .files
            .read(&format!("{VIRTUAL}/inner-link"), Some(0), None)
            .unwrap();
        assert_eq!(result.data, "inner");
    }

    #[test]
    fn paths_outside_any_sandbox_are_not_found() {
        let f = fixture();
        for path in [
            "/etc/passwd",
            f.outside.to_str().unwrap(),
            "/frameworks/F/executors/X/runs/latest/stdout",
            "/",
        ] {
            assert!(
                matches!(
                    f.files.read(path, Some(0), None),
                    Err(FilesError::NotFound(_))
                ),
                "{path}"
            );
        }
        assert!(matches!(
            f.files.read(&format!("{VIRTUAL}/missing"), Some(0), None),
            Err(FilesError::NotFound(_))
        ));
    }

    #[test]
    fn browse_lists_sorted_entries_with_mesos_fields() {
        let f = fixture();
        let listing = f.files.browse(&format!("{VIRTUAL}/")).unwrap();
        let paths: Vec<_> = listing.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [format!("{VIRTUAL}/stdout"), format!("{VIRTUAL}/sub")]
        );
        assert_eq!(listing[0].size, 12);
        assert!(listing[0].mode.starts_with('-'));
        assert!(listing[1].mode.starts_with('d'));
        assert!(matches!(
            f.files.browse(&format!("{VIRTUAL}/stdout")),
            Err(FilesError::Invalid(_))
        ));
    }

    #[test]
    fn directories_and_fifos_are_not_read() {
        let f = fixture();
        assert!(matches!(
            f.files.read(&format!("{VIRTUAL}/sub"), Some(0), None),
            Err(FilesError::Invalid(m)) if m.contains("directory")
        ));
        nix::unistd::mkfifo(&f.sandbox.join("fifo"), Mode::S_IRWXU).unwrap();
        assert!(matches!(
            f.files.read(&format!("{VIRTUAL}/fifo"), Some(0), None),
            Err(FilesError::Invalid(_))
        ));
    }

    #[test]
    fn detach_removes_access() {
        let f = fixture();
        f.files.detach(VIRTUAL);
        assert!(matches!(
            f.files.read(&format!("{VIRTUAL}/stdout"), Some(0), None),
            Err(FilesError::NotFound(_))
        ));
    }

    #[test]
    fn mode_strings_match_ls() {
        assert_eq!(mode_string(libc::S_IFREG | 0o644), "-rw-r--r--");
        assert_eq!(mode_string(libc::S_IFDIR | 0o750), "drwxr-x---");
        assert_eq!(mode_string(libc::S_IFREG | 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(libc::S_IFDIR | 0o1777), "drwxrwxrwt");
    }
}
