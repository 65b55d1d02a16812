//! `clone3` of the launch helper, straight into the container's cgroup and
//! namespaces, from the multi-threaded agent.
//!
//! After the clone the child is a copy of one thread of a threaded process:
//! any lock another thread held stays locked forever, so the child only makes
//! async-signal-safe calls (`fcntl`, `dup2`, `execve`, `write`, `_exit`) on
//! values prepared before the clone, then execs the single-threaded helper.
//!
//! On x86-64 the child shares the agent's memory until its exec
//! (`CLONE_VM | CLONE_VFORK` on a private stack, as `posix_spawn` does):
//! copying the page tables of a big agent would otherwise cost time growing
//! with its memory (~0.4 ms for a small test binary). The calling thread is
//! suspended until the exec, and every signal is blocked, so nothing of the
//! agent runs or changes under the child. Elsewhere the clone copies the
//! address space like `fork`.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use nix::errno::Errno;

use crate::status_pipe;
use crate::step::Step;

/// `CLONE_INTO_CGROUP`. libc's constant is a `c_int` that overflows to 0.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// `CLONE_PIDFD`: the kernel hands back a pidfd, so the exit can be waited on
/// without a race against pid reuse or a SIGCHLD handler.
const CLONE_PIDFD: u64 = libc::CLONE_PIDFD as u64;

/// Everything the child needs, prepared before the clone (no allocation
/// happens in the child).
#[derive(Debug)]
pub(crate) struct ChildSetup<'a> {
    /// The helper binary.
    pub helper: &'a CStr,
    /// Its argv, ending in a null pointer.
    pub argv: &'a [*const libc::c_char],
    /// Its environment, ending in a null pointer.
    pub envp: &'a [*const libc::c_char],
    /// Becomes the child's fd 0, 1, 2.
    pub stdio: [BorrowedFd<'a>; 3],
    /// Kept open across the helper exec (close-on-exec cleared in the child).
    pub inherit: [BorrowedFd<'a>; 2],
    /// Where to report a failed helper exec.
    pub status: BorrowedFd<'a>,
}

/// The cloned child.
#[derive(Debug)]
pub(crate) struct Child {
    /// Its pid in the agent's pid namespace.
    pub pid: i32,
    /// A pidfd for waiting and signalling without pid-reuse races.
    pub pidfd: OwnedFd,
}

/// Owned, NUL-terminated argv/envp plus the pointer arrays `execve` takes.
#[derive(Debug)]
pub(crate) struct CStringArray {
    _strings: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

impl CStringArray {
    /// Fails if a string contains a NUL byte.
    pub fn new<I, S>(items: I) -> Result<Self, std::ffi::NulError>
    where
        I: IntoIterator<Item = S>,
        S: Into<Vec<u8>>,
    {
        let strings = items
            .into_iter()
            .map(CString::new)
            .collect::<Result<Vec<_>, _>>()?;
        let pointers = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect();
        Ok(CStringArray {
            _strings: strings,
            pointers,
        })
    }

    /// The null-terminated pointer array.
    pub fn as_ptrs(&self) -> &[*const libc::c_char] {
        &self.pointers
    }
}

/// Clones the child into `cgroup` (a cgroup2 directory fd) and the namespaces
/// in `namespace_flags`; the child execs the helper.
pub(crate) fn spawn(
    setup: &ChildSetup<'_>,
    namespace_flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
) -> Result<Child, Errno> {
    let mut pidfd: RawFd = -1;
    let mut flags = CLONE_PIDFD | namespace_flags;
    if cgroup.is_some() {
        flags |= CLONE_INTO_CGROUP;
    }
    let mut args = libc::clone_args {
        flags,
        pidfd: &mut pidfd as *mut RawFd as u64,
        child_tid: 0,
        parent_tid: 0,
        // SIGCHLD like fork: waitid without __WALL works and nothing unusual
        // reaches a SIGCHLD handler the agent may have.
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        // A fd number is non-negative.
        cgroup: cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
    };

    // Block every signal so no handler of the agent runs in the child before
    // the exec; the helper resets the mask and dispositions.
    let mut old_mask = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset/pthread_sigmask write into the provided sigset_t
    // storage, which is valid for writes.
    unsafe {
        let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old_mask.as_mut_ptr());
    }

    let ret = clone3_exec(&mut args, setup);
    let errno = Errno::last();
    // SAFETY: old_mask was filled by pthread_sigmask above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old_mask.as_ptr(), ptr::null_mut());
    }
    if ret < 0 {
        return Err(errno);
    }
    Ok(Child {
        // A pid always fits in i32.
        pid: ret as i32,
        // SAFETY: with CLONE_PIDFD a successful clone3 stored a new fd we own.
        pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
    })
}

/// Stack of the child until its exec: `child_exec` needs a few KiB.
#[cfg(target_arch = "x86_64")]
const CHILD_STACK: usize = 64 * 1024;

/// `clone3` with `CLONE_VM | CLONE_VFORK`; the child runs [`child_exec`] on
/// its own stack. Returns the child's pid, or -1 with errno set.
#[cfg(target_arch = "x86_64")]
fn clone3_exec(args: &mut libc::clone_args, setup: &ChildSetup<'_>) -> i64 {
    let mut stack = vec![0u8; CHILD_STACK];
    let base = stack.as_mut_ptr() as u64;
    // The ABI wants a 16-byte aligned stack pointer before a call.
    let top = (base + CHILD_STACK as u64) & !15;
    args.flags |= (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
    args.stack = base;
    args.stack_size = top - base;
    let entry: extern "C" fn(*const libc::c_void) -> ! = child_entry;
    let ret: i64;
    // SAFETY: the kernel reads `args`, which outlives the call. In the
    // parent the block is a plain syscall clobbering rcx and r11. The child
    // starts after `syscall` with rax = 0 and rsp = the top of `stack`, which
    // stays allocated because CLONE_VFORK suspends this thread until the
    // child has exec'd or exited; it calls `child_entry(setup)`, which never
    // returns, and `setup` lives on this suspended thread's stack.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *mut libc::clone_args,
            in("rsi") std::mem::size_of::<libc::clone_args>(),
            in("r12") setup as *const ChildSetup<'_>,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    drop(stack);
    if ret < 0 {
        // The raw syscall returns -errno.
        Errno::set_raw(-ret as i32);
        return -1;
    }
    ret
}

/// `clone3` like `fork`: the child runs [`child_exec`] on a copy of this
/// stack in a copy of the address space.
#[cfg(not(target_arch = "x86_64"))]
fn clone3_exec(args: &mut libc::clone_args, setup: &ChildSetup<'_>) -> i64 {
    // SAFETY: with stack = 0 the child continues here on its own copy of the
    // memory; `args` outlives the call; the child branch never returns.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if ret == 0 {
        // SAFETY: we are the freshly cloned child.
        unsafe { child_exec(setup) }
    }
    i64::from(ret)
}

/// Entry of the `CLONE_VM` child on its private stack.
#[cfg(target_arch = "x86_64")]
extern "C" fn child_entry(setup: *const libc::c_void) -> ! {
    // SAFETY: `setup` is the `ChildSetup` the suspended parent passed to
    // `clone3_exec`; it stays valid until this child execs or exits.
    unsafe { child_exec(&*setup.cast::<ChildSetup<'_>>()) }
}

/// The child between `clone3` and the helper exec: async-signal-safe calls only.
///
/// # Safety
/// Must only be called in the child right after `clone3` returned 0.
unsafe fn child_exec(setup: &ChildSetup<'_>) -> ! {
    let status = setup.status.as_raw_fd();
    for fd in setup.inherit {
        // SAFETY: fcntl on a fd number is always memory-safe.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) } < 0 {
            // SAFETY: as above, then _exit.
            unsafe { fail(status, b"clear close-on-exec") }
        }
    }
    for (target, fd) in setup.stdio.iter().enumerate() {
        // The parent guarantees every fd it passes is >= 3, so these dup2s
        // cannot clobber one another. `target` is 0..3.
        // SAFETY: dup2 on fd numbers is memory-safe.
        if unsafe { libc::dup2(fd.as_raw_fd(), target as libc::c_int) } < 0 {
            // SAFETY: as above.
            unsafe { fail(status, b"dup2 stdio") }
        }
    }
    // SAFETY: helper, argv and envp are NUL-terminated strings and
    // null-terminated arrays owned by the parent's (copied) memory.
    unsafe {
        libc::execve(
            setup.helper.as_ptr(),
            setup.argv.as_ptr(),
            setup.envp.as_ptr(),
        );
        fail(status, b"execve of the launch helper")
    }
}

/// Reports a failure of the pre-helper child and exits.
///
/// # Safety
/// Only for the child; calls `_exit`.
unsafe fn fail(status: RawFd, message: &[u8]) -> ! {
    let errno = Errno::last_raw();
    status_pipe::write_record(status, true, Step::ExecHelper, errno, message);
    // SAFETY: _exit skips atexit handlers and stdio flushing, which belong to
    // the parent.
    unsafe { libc::_exit(127) }
}

/// `pidfd_send_signal(2)`.
pub(crate) fn pidfd_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal with a null siginfo and no flags only reads
    // its integer arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// `pidfd_open(2)`: a pidfd for an existing process (recovery).
pub(crate) fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open only reads its integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = Errno::result(ret)?;
    // SAFETY: on success the kernel returned a new fd that we now own; fds
    // fit in i32.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
