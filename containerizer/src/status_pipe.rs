//! The status pipe from the launching child to the parent.
//!
//! The write end is close-on-exec in the executor, so end-of-file after a
//! "starting exec" record means the exec happened. Before that, the child
//! reports each step it starts and, on failure, the step, errno and a message.
//! End-of-file without a failure record and before the exec record means the
//! child died (the parent then reports the last step it started), so the
//! parent never hangs on a child that died early.
//!
//! Record layout: `tag: u8`, `step: u8`, `errno: i32 LE`, `at: u64 LE`
//! (`CLOCK_MONOTONIC` nanoseconds, comparable with the parent's clock, so a
//! launch can be timed step by step), `len: u16 LE`, then `len` bytes of UTF-8
//! message. Encoding needs no allocation, so the cloned child may use it
//! before it execs.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::step::{LaunchError, Step};

const TAG_STARTED: u8 = b'S';
const TAG_FAILED: u8 = b'F';
const HEADER_LEN: usize = 16;
/// Longer messages are truncated; they name a path or a user.
pub(crate) const MAX_MESSAGE: usize = 1024;
/// Size of the stack buffer an encoded record fits in.
pub(crate) const MAX_RECORD: usize = HEADER_LEN + MAX_MESSAGE;

/// Encodes one record into `buf`, truncating the message; returns its length.
pub(crate) fn encode(
    buf: &mut [u8; MAX_RECORD],
    failed: bool,
    step: Step,
    errno: i32,
    message: &[u8],
) -> usize {
    let len = message.len().min(MAX_MESSAGE);
    buf[0] = if failed { TAG_FAILED } else { TAG_STARTED };
    buf[1] = step as u8;
    buf[2..6].copy_from_slice(&errno.to_le_bytes());
    buf[6..14].copy_from_slice(&monotonic_ns().to_le_bytes());
    // `len` is at most MAX_MESSAGE, which fits in a u16.
    buf[14..16].copy_from_slice(&(len as u16).to_le_bytes());
    buf[HEADER_LEN..HEADER_LEN + len].copy_from_slice(&message[..len]);
    HEADER_LEN + len
}

/// `CLOCK_MONOTONIC` in nanoseconds. Async-signal-safe (a vDSO call).
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    // The monotonic clock is non-negative.
    (now.tv_sec as u64) * 1_000_000_000 + now.tv_nsec as u64
}

/// Writes one record with a single `write(2)`. Async-signal-safe. Pipe writes
/// of at most `PIPE_BUF` (4 KiB) bytes are atomic and a record is smaller, so
/// a record is never split.
pub(crate) fn write_record(fd: i32, failed: bool, step: Step, errno: i32, message: &[u8]) {
    let mut buf = [0u8; MAX_RECORD];
    let len = encode(&mut buf, failed, step, errno, message);
    // SAFETY: `buf[..len]` is initialized memory we own; a failed write means
    // the parent is gone, and there is nobody left to tell.
    unsafe {
        libc::write(fd, buf.as_ptr().cast(), len);
    }
}

/// What the parent learnt from the status pipe once it reached end-of-file.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// The last step the child said it started.
    pub last_step: Option<Step>,
    /// Every step the child started, with its `CLOCK_MONOTONIC` time.
    pub steps: Vec<(Step, u64)>,
    /// The failure the child reported, if any.
    pub failure: Option<LaunchError>,
}

impl Report {
    /// Parses every complete record of `bytes`.
    pub fn parse(bytes: &[u8]) -> Report {
        let mut report = Report::default();
        let mut rest = bytes;
        while rest.len() >= HEADER_LEN {
            let tag = rest[0];
            let step = Step::from_u8(rest[1]);
            let errno = i32::from_le_bytes([rest[2], rest[3], rest[4], rest[5]]);
            let mut at = [0u8; 8];
            at.copy_from_slice(&rest[6..14]);
            let at = u64::from_le_bytes(at);
            let len = usize::from(u16::from_le_bytes([rest[14], rest[15]]));
            if rest.len() < HEADER_LEN + len {
                break;
            }
            let message = String::from_utf8_lossy(&rest[HEADER_LEN..HEADER_LEN + len]);
            rest = &rest[HEADER_LEN + len..];
            let Some(step) = step else { continue };
            match tag {
                TAG_STARTED => {
                    report.last_step = Some(step);
                    report.steps.push((step, at));
                }
                TAG_FAILED if report.failure.is_none() => {
                    report.failure = Some(LaunchError {
                        step,
                        errno: (errno != 0).then_some(errno),
                        message: message.into_owned(),
                    })
                }
                _ => {}
            }
        }
        report
    }

    /// True if the child got as far as exec'ing the executor.
    pub fn exec_succeeded(&self) -> bool {
        self.failure.is_none() && self.last_step == Some(Step::Exec)
    }
}

/// Reads the pipe to end-of-file without blocking a runtime thread.
pub(crate) async fn read_to_end(read_end: OwnedFd) -> std::io::Result<Report> {
    set_nonblocking(read_end.as_fd())?;
    // SAFETY: the OwnedFd moves into the AsyncFd, so the fd stays open and
    // refers to the same file description for the AsyncFd's whole lifetime.
    let fd = unsafe { AsyncFd::register_with_interest(read_end, Interest::READABLE) }
        .map_err(std::io::Error::from)?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut guard = fd.readable().await?;
        match guard.try_io(|inner| read_once(inner.get_ref().as_raw_fd(), &mut chunk)) {
            Ok(Ok(0)) => return Ok(Report::parse(&bytes)),
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
            Ok(Err(error)) => return Err(error),
            Err(_would_block) => continue,
        }
    }
}

fn read_once(fd: i32, chunk: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: `chunk` is a valid writable buffer of the given length.
    let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
    if n < 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::Interrupted {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        return Err(error);
    }
    // `n` is non-negative here.
    Ok(n as usize)
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(failed: bool, step: Step, errno: i32, message: &str) -> Vec<u8> {
        let mut buf = [0u8; MAX_RECORD];
        let len = encode(&mut buf, failed, step, errno, message.as_bytes());
        buf[..len].to_vec()
    }

    #[test]
    fn exec_record_then_eof_is_success() {
        let mut bytes = record(false, Step::Setsid, 0, "");
        bytes.extend(record(false, Step::Exec, 0, ""));
        let report = Report::parse(&bytes);
        assert!(report.exec_succeeded());
    }

    #[test]
    fn failure_after_exec_record_is_failure() {
        let mut bytes = record(false, Step::Exec, 0, "");
        bytes.extend(record(true, Step::Exec, libc::ENOENT, "'/nope' not found"));
        let report = Report::parse(&bytes);
        assert!(!report.exec_succeeded());
        let failure = report.failure.expect("failure recorded");
        assert_eq!(failure.step, Step::Exec);
        assert_eq!(failure.errno, Some(libc::ENOENT));
        assert_eq!(failure.message, "'/nope' not found");
    }

    #[test]
    fn eof_before_exec_is_not_success() {
        let bytes = record(false, Step::MountRootfs, 0, "");
        let report = Report::parse(&bytes);
        assert!(!report.exec_succeeded());
        assert_eq!(report.last_step, Some(Step::MountRootfs));
        assert!(report.failure.is_none());
    }

    #[test]
    fn truncated_record_is_ignored_and_long_messages_truncated() {
        let long = "x".repeat(MAX_MESSAGE + 100);
        let mut bytes = record(true, Step::Mounts, 0, &long);
        assert_eq!(bytes.len(), MAX_RECORD);
        bytes.extend(&record(false, Step::Exec, 0, "")[..3]);
        let report = Report::parse(&bytes);
        let failure = report.failure.expect("failure recorded");
        assert_eq!(failure.message.len(), MAX_MESSAGE);
        assert_eq!(failure.errno, None);
    }
}
