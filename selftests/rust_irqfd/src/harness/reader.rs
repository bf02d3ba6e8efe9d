// SPDX-License-Identifier: GPL-2.0
//! A reader blocked in `read(2)` on a context: the oracle that a path
//! raising a record wakes the readers, not only queues the record.
//!
//! A non-blocking read finds a record whether or not its raising woke
//! anyone, so it cannot see a forgotten wakeup. [`BlockedReader`] clears
//! `O_NONBLOCK` on the context, has a thread sleep in `read(2)` on it (the
//! devices have no `poll(2)`), and after the test has taken the path under
//! test, wants that read to return the record within the timeout. The wait
//! is bounded: a reader still asleep then is interrupted with a signal
//! (`EINTR`, the read sleeps interruptibly in both modules), so a lost
//! wakeup is a failure, never a hang, and the context is left as it was
//! (`O_NONBLOCK` set again).

use std::os::fd::AsFd;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::abi::RustIrqfdDelivery;
use crate::dev::Ctx;
use crate::sys::{self, SysResult};

use super::{ok, wait_until, Env};

/// What the reader's `read(2)` gave.
type ReadResult = SysResult<Vec<RustIrqfdDelivery>>;

/// A thread asleep in `read(2)` on a context (see the module's comment).
pub struct BlockedReader<'c> {
    ctx: &'c Ctx,
    tid: i32,
    rx: Receiver<ReadResult>,
    thread: Option<JoinHandle<()>>,
}

/// State of thread `tid` from /proc (`S` = sleeping), if /proc is there.
fn thread_state(tid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether thread `tid` sleeps in `read(2)`: state `S`, and the system call
/// it is in is `read` where `/proc/.../syscall` tells (it may not exist);
/// `None` without /proc, where nothing tells.
fn asleep_in_read(tid: i32) -> (Option<bool>, String) {
    let st = thread_state(tid);
    let call = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok();
    let in_read = call
        .as_deref()
        .is_none_or(|c| c.split_whitespace().next() == Some(&libc::SYS_read.to_string()));
    (
        st.map(|st| st == 'S' && in_read),
        format!("state {st:?}, syscall {:?}", call.as_deref().map(str::trim)),
    )
}

impl<'c> BlockedReader<'c> {
    /// Clears `O_NONBLOCK` on `ctx` and starts a thread reading up to `max`
    /// records from it; returns once that thread sleeps in `read(2)`. The
    /// test must not read `ctx` itself until [`finish`](Self::finish).
    /// Fails if the read returns before anything was done (a record was
    /// already pending: the test would prove nothing).
    pub fn start(env: &Env, ctx: &'c Ctx, max: usize) -> Result<Self, String> {
        let reader = ok("dup(context)", ctx.try_clone())?;
        ok(
            "fcntl(context, F_SETFL, no O_NONBLOCK)",
            sys::set_nonblock(ctx.as_fd(), false),
        )?;
        let (tid_tx, tid_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("blocked-reader".into())
            .spawn(move || {
                let _ = tid_tx.send(sys::gettid());
                let _ = tx.send(reader.read_records(max));
            })
            .map_err(|e| format!("spawning the reader thread: {e}"))?;
        let mut r = BlockedReader {
            ctx,
            tid: 0,
            rx,
            thread: Some(thread),
        };
        r.tid = tid_rx
            .recv_timeout(env.timeout)
            .map_err(|_| "the reader thread did not start".to_string())?;
        let mut told = true;
        let early = |r: &Self| match r.rx.try_recv() {
            Ok(got) => Err(format!(
                "read(2) returned before the path under test was taken: {got:?}"
            )),
            Err(_) => Ok(()),
        };
        let slept = wait_until(env, "the reader to sleep in read(2)", || {
            early(&r)?;
            let (asleep, state) = asleep_in_read(r.tid);
            told = asleep.is_some();
            Ok((asleep.unwrap_or(true), state))
        })
        .and_then(|()| {
            if !told {
                // No /proc: give the thread time to get into read(2).
                std::thread::sleep(Duration::from_millis(100));
            }
            early(&r)
        });
        if let Err(m) = slept {
            let _ = r.finish_within(Duration::ZERO);
            return Err(m);
        }
        Ok(r)
    }

    /// The records the blocked read returned after the test took its path:
    /// it must return them within the timeout. A reader still asleep then
    /// lost its wakeup; it is interrupted, and the test fails.
    pub fn finish(mut self, env: &Env, path: &str) -> Result<Vec<RustIrqfdDelivery>, String> {
        match self.finish_within(env.timeout) {
            Ok(Ok(v)) if v.is_empty() => Err(format!(
                "{path}: the blocked read(2) returned 0 bytes; expected records"
            )),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!(
                "{path}: the blocked read(2) failed with {e}; expected records"
            )),
            Err(state) => Err(format!(
                "{path}: a reader blocked in read(2) was not woken within {:?}, although the \
                 path raised a record (lost wakeup); {state}",
                env.timeout
            )),
        }
    }

    /// Waits up to `wait` for the read; past it, interrupts the reader and
    /// gives what it was left in. Sets `O_NONBLOCK` again in every case.
    fn finish_within(&mut self, wait: Duration) -> Result<ReadResult, String> {
        let (got, returned) = match self.rx.recv_timeout(wait) {
            Ok(r) => (Ok(r), true),
            Err(RecvTimeoutError::Disconnected) => (Ok(Err(sys::Errno(libc::EPIPE))), true),
            Err(RecvTimeoutError::Timeout) => {
                let (_, state) = asleep_in_read(self.tid);
                let sent = sys::interrupt_thread(self.tid);
                let after = self.rx.recv_timeout(Duration::from_secs(5));
                let returned = after.is_ok();
                (
                    Err(format!(
                        "reader thread {state}; interrupted ({sent:?}): its read gave {after:?}"
                    )),
                    returned,
                )
            }
        };
        // Only a reader that returned can be joined; one that did not is
        // left to die with the process.
        if let Some(t) = self.thread.take() {
            if returned {
                let _ = t.join();
            }
        }
        let _ = sys::set_nonblock(self.ctx.as_fd(), true);
        got
    }
}

impl Drop for BlockedReader<'_> {
    /// A reader dropped without [`finish`](Self::finish) (the test failed
    /// on the way) is ended the same way.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.finish_within(Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    /// A "context" that is a pipe, reopened through /proc (O_RDWR |
    /// O_NONBLOCK, as `Ctx::open` opens a device), and its write end.
    fn pipe_ctx() -> (Ctx, std::os::fd::OwnedFd) {
        let (r, w) = sys::pipe().unwrap();
        let c = Ctx::open(Path::new(&format!("/proc/self/fd/{}", r.as_raw_fd()))).unwrap();
        (c, w)
    }

    fn env() -> Env {
        Env {
            device: "/nonexistent".into(),
            peers: vec![],
            timeout: Duration::from_millis(500),
            info: Default::default(),
            stress: Default::default(),
            fuzz: Default::default(),
            report: Default::default(),
        }
    }

    /// A reader asleep in read(2) returns what arrives, and the file is
    /// non-blocking again afterwards.
    #[test]
    fn woken_reader_returns_the_record() {
        let env = env();
        let (c, w) = pipe_ctx();
        let r = BlockedReader::start(&env, &c, 1).unwrap();
        sys::write(w.as_fd(), &[0u8; RustIrqfdDelivery::SIZE]).unwrap();
        let v = r.finish(&env, "a write").unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(c.read_records(1).unwrap_err().0, libc::EAGAIN);
    }

    /// A reader never woken fails the test within the timeout, is
    /// interrupted (EINTR) rather than left asleep, and the file is
    /// non-blocking again.
    #[test]
    fn lost_wakeup_fails_without_hanging() {
        let env = env();
        let (c, _w) = pipe_ctx();
        let r = BlockedReader::start(&env, &c, 1).unwrap();
        let e = r.finish(&env, "nothing").unwrap_err();
        assert!(e.contains("lost wakeup"), "{e}");
        assert!(e.contains("EINTR"), "{e}");
        assert_eq!(c.read_records(1).unwrap_err().0, libc::EAGAIN);
    }

    /// Something already readable: the read returns before the path under
    /// test is taken, which start() reports.
    #[test]
    fn pending_before_start_is_refused() {
        let env = env();
        let (c, w) = pipe_ctx();
        sys::write(w.as_fd(), &[0u8; RustIrqfdDelivery::SIZE]).unwrap();
        let e = BlockedReader::start(&env, &c, 1).err().unwrap();
        assert!(e.contains("returned before"), "{e}");
    }
}
