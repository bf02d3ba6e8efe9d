// SPDX-License-Identifier: GPL-2.0
//! The process and its threads: thread id, CPU affinity, the descriptor
//! limit, modules, and forked children that make one or two system calls.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use super::{
    check, eventfd, eventfd_signal, ioctl_ptr_raw, read, send_fd, write, Errno, SysResult,
};

/// Thread id of the calling thread.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The SIGUSR1 handler of [`interrupt_thread`]: it only has to exist.
extern "C" fn on_sigusr1(_: libc::c_int) {}

/// Interrupts thread `tid` of this process in a blocking system call: sends
/// it SIGUSR1, whose handler (installed on first use, without `SA_RESTART`)
/// does nothing, so that an interruptible sleep ends and the call fails
/// with `EINTR`. Nothing else in the test uses SIGUSR1.
pub fn interrupt_thread(tid: i32) -> SysResult<()> {
    static HANDLER: std::sync::Once = std::sync::Once::new();
    let mut installed = Ok(());
    HANDLER.call_once(|| {
        // SAFETY: an all-zero sigaction is valid: no flags, an empty mask
        // (filled in below), the handler set next.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `sa.sa_mask` is a valid sigset_t to fill.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: `sa` is a valid sigaction whose handler is async-signal-safe
        // (it does nothing); the old action is not asked for.
        installed =
            check(unsafe { libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) }.into())
                .map(|_| ());
    });
    installed?;
    // SAFETY: tgkill takes integers only; `tid` names a thread of this
    // process (the thread group is ours), or the call fails with ESRCH.
    check(unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid() as libc::c_long,
            tid as libc::c_long,
            libc::SIGUSR1 as libc::c_long,
        )
    })
    .map(|_| ())
}

/// `delete_module(name, flags)`: what `rmmod` does.
pub fn delete_module(name: &str, flags: i32) -> SysResult<()> {
    let c = CString::new(name).map_err(|_| Errno(libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    check(unsafe { libc::syscall(libc::SYS_delete_module, c.as_ptr(), flags as libc::c_long) })
        .map(|_| ())
}

/// The CPUs the calling thread may run on (empty if that cannot be read).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let ret = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if ret != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE, inside the set.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> SysResult<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE, inside the set.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is this thread.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    check(ret.into()).map(|_| ())
}

/// `getrlimit(RLIMIT_NOFILE)`: (soft, hard).
pub fn nofile_limit() -> SysResult<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable `rlimit`.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }.into())?;
    Ok((r.rlim_cur, r.rlim_max))
}

/// `setrlimit(RLIMIT_NOFILE)` to (`soft`, `hard`).
pub fn set_nofile_limit(soft: u64, hard: u64) -> SysResult<()> {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `r` is a valid `rlimit`.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }.into()).map(|_| ())
}

/// Forks a child that runs `child` and `_exit`s with the code it returns;
/// gives the parent the child's pid.
///
/// # Safety
///
/// The child of a multithreaded process may only make async-signal-safe
/// calls: `child` must not allocate, take a lock (another thread may hold
/// it forever in the child) or unwind. The wrappers of this module that
/// neither allocate nor lock (a syscall and a check of its result) qualify.
unsafe fn fork_exit(child: impl FnOnce() -> i32) -> SysResult<libc::pid_t> {
    // SAFETY: the caller keeps the child to async-signal-safe calls.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        let code = child();
        // SAFETY: _exit is async-signal-safe and does not return; the
        // child runs none of the parent's destructors or exit handlers.
        unsafe { libc::_exit(code) };
    }
    Ok(pid)
}

/// `waitpid(pid, 0)`, once: the raw wait status of the child `pid`.
pub fn waitpid(pid: libc::pid_t) -> SysResult<i32> {
    let mut status = 0;
    // SAFETY: `status` is a valid int the kernel writes.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r == pid {
        Ok(status)
    } else {
        Err(Errno::last())
    }
}

/// Forks a child that adds `v` to the eventfd `fd` with one `write(2)` and
/// exits (status 0 if the write took, 1 otherwise); waits for it and returns
/// its exit status (128 + the signal number if it was killed). The child
/// shares every descriptor of the process until it exits.
pub fn fork_signal(fd: BorrowedFd<'_>, v: u64) -> SysResult<i32> {
    let buf = v.to_ne_bytes();
    // SAFETY: the child makes one write(2) from a buffer prepared before
    // the fork, touching no lock or allocation.
    let pid = unsafe { fork_exit(|| if write(fd, &buf) == Ok(8) { 0 } else { 1 }) }?;
    let status = loop {
        match waitpid(pid) {
            Ok(status) => break status,
            Err(e) if e.0 == libc::EINTR => continue,
            Err(e) => return Err(e),
        }
    };
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Ok(128 + libc::WTERMSIG(status))
    }
}

/// Forks a child that makes one `ioctl(fd, cmd, arg)` on the descriptor it
/// inherited and exits (status 0 if the ioctl succeeded, 1 otherwise);
/// returns its pid (wait for it with [`waitpid`]). `arg` is the child's
/// copy: what the kernel writes back stays in the child.
pub fn fork_ioctl<T: Copy>(fd: BorrowedFd<'_>, cmd: u32, arg: &mut T) -> SysResult<libc::pid_t> {
    let raw = fd.as_raw_fd();
    // SAFETY: the child makes one ioctl(2) on memory set up before the
    // fork, touching no lock or allocation.
    unsafe { fork_exit(|| ioctl_ptr_raw(raw, cmd, arg).map_or(1, |_| 0)) }
}

/// Forks a child that creates an eventfd, sends it over the Unix socket
/// `sock` ([`send_fd`]), waits for a byte (or end of file) on `go`, then
/// signals its eventfd once and exits (status 0 if every step worked, 1
/// at the first that failed); returns its pid (wait for it with
/// [`waitpid`]).
pub fn fork_eventfd_sender(sock: BorrowedFd<'_>, go: BorrowedFd<'_>) -> SysResult<libc::pid_t> {
    let steps = || -> SysResult<()> {
        let e = eventfd(0, libc::EFD_NONBLOCK)?;
        send_fd(sock, e.as_fd())?;
        let mut b = [0u8; 1];
        read(go, &mut b)?;
        eventfd_signal(e.as_fd(), 1)
    };
    // SAFETY: each step is one system call with buffers on the stack and a
    // check of its result (a failure reads errno, allocating nothing); the
    // eventfd is closed when the steps return.
    unsafe { fork_exit(|| steps().map_or(1, |()| 0)) }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;

    use super::super::{eventfd_read, pipe, recv_fd, Received};
    use super::*;

    /// A forked child's write lands in the parent's eventfd.
    #[test]
    fn fork_signal_writes() {
        let e = eventfd(0, libc::EFD_NONBLOCK).unwrap();
        assert_eq!(fork_signal(e.as_fd(), 3), Ok(0));
        assert_eq!(eventfd_read(e.as_fd()), Ok(3));
        let (r, _w) = pipe().unwrap();
        // The read end of a pipe: the child's write fails, status 1.
        assert_eq!(fork_signal(r.as_fd(), 1), Ok(1));
    }

    /// The child's eventfd arrives over the socket and its signal, sent
    /// once the parent says go, lands in the parent's copy.
    #[test]
    fn fork_eventfd_sender_sends_and_signals() {
        let (parent, child) = UnixDatagram::pair().unwrap();
        let (go_r, go_w) = pipe().unwrap();
        let pid = fork_eventfd_sender(child.as_fd(), go_r.as_fd()).unwrap();
        let Ok(Received::Fd(e)) = recv_fd(parent.as_fd()) else {
            panic!("no descriptor from the child");
        };
        assert_eq!(eventfd_read(e.as_fd()), Err(Errno(libc::EAGAIN)));
        write(go_w.as_fd(), &[1]).unwrap();
        let status = waitpid(pid).unwrap();
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert_eq!(eventfd_read(e.as_fd()), Ok(1));
    }

    /// The child's ioctl fails on an eventfd (not a context): status 1.
    #[test]
    fn fork_ioctl_status() {
        let e = eventfd(0, libc::EFD_NONBLOCK).unwrap();
        let mut x = 0u64;
        let pid = fork_ioctl(e.as_fd(), 0, &mut x).unwrap();
        let status = waitpid(pid).unwrap();
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1);
        assert_eq!(waitpid(pid), Err(Errno(libc::ECHILD)));
    }

    #[test]
    fn nofile_limit_round_trip() {
        let (soft, hard) = nofile_limit().unwrap();
        assert!(soft <= hard);
        set_nofile_limit(soft, hard).unwrap();
        assert_eq!(nofile_limit(), Ok((soft, hard)));
    }

    #[test]
    fn cpus_and_modules() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        std::thread::spawn(move || pin_to_cpu(cpus[0]).unwrap())
            .join()
            .unwrap();
        assert_eq!(pin_to_cpu(1 << 20), Err(Errno(libc::EINVAL)));
        // Never a real module: ENOENT as root, EPERM otherwise (ENOSYS in
        // a sandbox without module support).
        let r = delete_module("rust_irqfd_test_no_such_module", libc::O_NONBLOCK);
        assert!(
            [libc::ENOENT, libc::EPERM, libc::ENOSYS].contains(&r.unwrap_err().0),
            "{r:?}"
        );
    }
}
