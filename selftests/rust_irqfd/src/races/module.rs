// SPDX-License-Identifier: GPL-2.0
//! Module unload while a context is open (R18): `delete_module` must be
//! refused as long as a context pins the module, whatever the contexts,
//! irqfds and writes around it, and the device must still work after.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use super::calls::{must, pause, racy};
use super::oracle::{expect_nr, final_checks, i5, reader, Acct};
use super::G;
use crate::harness::{ensure, new_eventfd, ok, skip, Ran, Stop};
use crate::stress::{device_name, Run};
use crate::sys;

/// R18: module unload while a context is open. A pinned context with four
/// bound eventfds stays open throughout; one thread tries `delete_module`
/// (O_NONBLOCK) every millisecond, which must fail with EAGAIN (or EBUSY)
/// and never unload the module; another opens, fills and closes contexts
/// and closes their eventfds; a third writes to the pinned irqfds.
/// Afterwards the device must still work: the pinned context has its four
/// irqfds and delivers (I5), and a new context binds and delivers.
/// Skipped when the device is not a loaded module or rmmod is not allowed.
pub(super) fn r18(run: &Run) -> Ran {
    let env = run.env;
    let name = device_name(env);
    let sysdir = format!("/sys/module/{name}");
    if !Path::new(&sysdir).exists() {
        return skip(format!(
            "{sysdir} not found: {name} is not a loaded module of that name"
        ));
    }
    let refcnt = || -> Option<i64> {
        std::fs::read_to_string(format!("{sysdir}/refcnt"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let p = env.open()?;
    let efds = (0..4)
        .map(|_| new_eventfd())
        .collect::<Result<Vec<_>, _>>()?;
    for (i, e) in efds.iter().enumerate() {
        ok(
            "assign(fresh eventfd) in the pinned context",
            p.assign(e, G + i as u32),
        )?;
    }
    if let Some(n) = refcnt() {
        ensure(n >= 1, || {
            format!("{sysdir}/refcnt is {n} with a context open (the module is not pinned)")
        })?;
    }
    match sys::delete_module(&name, libc::O_NONBLOCK) {
        Ok(()) => {
            return Err(Stop::Fail(format!(
                "delete_module({name}) succeeded while a context was open: the module is gone \
                 under it"
            )))
        }
        Err(e) if e.0 == libc::EPERM => {
            return skip(format!(
                "delete_module({name}): EPERM (needs CAP_SYS_MODULE)"
            ))
        }
        Err(e) if e.0 == libc::ENOENT || e.0 == libc::ENOSYS => {
            return skip(format!("delete_module({name}): {e}"))
        }
        Err(e) if e.0 == libc::EAGAIN || e.0 == libc::EBUSY => {}
        Err(e) => {
            return Err(Stop::Fail(format!(
                "delete_module({name}) with a context open: expected EAGAIN or EBUSY, got {e}"
            )))
        }
    }
    let acct = Mutex::new(Acct::new(env.nr_gsis()));
    let b = run.budget(1.0);
    let opened = AtomicU64::new(0);
    run.workers(&b, 4, |w| match w.idx {
        0 => w.repeat(|w| {
            racy(
                w,
                &format!("delete_module({name}, O_NONBLOCK) with a context open"),
                sys::delete_module(&name, libc::O_NONBLOCK),
                &[libc::EAGAIN, libc::EBUSY],
            )
            .and_then(|unloaded| {
                if unloaded {
                    Err(format!(
                        "delete_module({name}) succeeded while a context was open"
                    ))
                } else {
                    Ok(())
                }
            })?;
            std::thread::sleep(Duration::from_millis(1));
            Ok(())
        }),
        1 => w.repeat(|w| {
            let c = env.open()?;
            opened.fetch_add(1, Relaxed);
            let f = new_eventfd()?;
            must(w, "assign(fresh eventfd)", c.assign(&f, G))?;
            must(w, "write(eventfd)", sys::eventfd_signal(f.as_fd(), 1))?;
            must(w, "close(bound eventfd)", sys::close(f))?;
            must(w, "close(context)", c.close())?;
            Ok(())
        }),
        2 => w.repeat(|w| {
            for e in &efds {
                must(
                    w,
                    "write(pinned eventfd)",
                    sys::eventfd_signal(e.as_fd(), 1),
                )?;
            }
            pause(Duration::from_micros(100));
            Ok(())
        }),
        _ => reader(w, &p, &acct),
    })?;
    // Still usable.
    expect_nr(&p, 4, "of the pinned context after the rmmod attempts")?;
    i5(
        env,
        &p,
        G,
        efds[0].as_fd(),
        "in the pinned context after the rmmod attempts",
    )?;
    let x = env.open()?;
    expect_nr(&x, 0, "of a new context after the rmmod attempts")?;
    let f = new_eventfd()?;
    ok("assign(fresh eventfd) in a new context", x.assign(&f, G))?;
    crate::harness::signal(&f)?;
    crate::harness::read_n(env, &x, 1)?;
    ok("close(new context)", x.close())?;
    for (i, e) in efds.iter().enumerate() {
        ok("deassign(pinned eventfd)", p.deassign(e, G + i as u32))?;
    }
    run.note(format!(
        "{} short-lived contexts; {sysdir}/refcnt {}",
        opened.load(Relaxed),
        refcnt().map_or("unreadable".into(), |n| n.to_string())
    ));
    let gsis: Vec<u32> = (G..G + 4).collect();
    Ok(final_checks(run, &p, Some(&acct), &gsis, 4)?)
}
