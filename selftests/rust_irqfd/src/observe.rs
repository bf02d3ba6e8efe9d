// SPDX-License-Identifier: GPL-2.0
//! Observability: a context's `/proc/self/fdinfo` lists its counters and
//! every binding with its per-irqfd counters, in the format both modules
//! share (Documentation/rust_irqfd.rst, "fdinfo"; ABI v2 adds `masked=`
//! and `resample=` at the end of each irqfd line).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd};

use crate::abi::RUST_IRQFD_ABI_VERSION;
use crate::dev::Ctx;
use crate::harness::{
    drain, ensure, eq, inject, mask, new_eventfd, ok, signal, test, wait_injected, Env, Needs,
    Test, TestResult,
};

/// The observability tests, in run order.
pub const TESTS: &[Test] = &[
    test!(fdinfo_lists_irqfds, Needs::gsis(4)),
    test!(fdinfo_masked_resample, Needs::gsis(4), [Inject]),
    test!(fdinfo_paging, Needs::gsis(PAGING_GSIS)),
];

/// Irqfd counts `fdinfo_paging` lists: exactly one chunk of the Rust
/// module (32, and 4 of C's 8), one more, and several chunks with a
/// partial one at the end.
const PAGING_COUNTS: [usize; 3] = [32, 33, 101];
/// GSIs `fdinfo_paging` binds to: edge irqfds on 1 ..= 5, resample ones on
/// 6 and 7.
const PAGING_GSIS: u32 = 8;

/// The fields of an irqfd line, in the order both modules print them.
const IRQFD_FIELDS: [&str; 8] = [
    "gsi",
    "fd",
    "signals",
    "fast",
    "deferred",
    "coalesced",
    "masked",
    "resample",
];

/// One `irqfd:` line of fdinfo.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Line {
    pub(crate) gsi: u32,
    pub(crate) fd: u32,
    pub(crate) signals: u64,
    pub(crate) fast: u64,
    pub(crate) deferred: u64,
    pub(crate) coalesced: u64,
    pub(crate) masked: u64,
    pub(crate) resample: u32,
}

/// The parsed fdinfo of a context: its `key:\tvalue` fields (the generic
/// ones the kernel prints too, like `pos` and `flags`, included), and its
/// irqfd lines keyed by fd, with the fds in the order they were listed.
/// Well formed means: every line is `key:` something, every irqfd line has
/// exactly the fields of [`IRQFD_FIELDS`] in that order, each a number,
/// and no two irqfd lines have one fd (an irqfd listed twice).
pub(crate) struct FdInfo {
    pub(crate) fields: BTreeMap<String, String>,
    pub(crate) irqfds: BTreeMap<u32, Line>,
    pub(crate) order: Vec<u32>,
}

impl FdInfo {
    /// The fdinfo of the context `ctx`, read through `/proc/self/fdinfo`.
    pub(crate) fn read(ctx: &Ctx) -> Result<Self, String> {
        let path = format!("/proc/self/fdinfo/{}", ctx.as_fd().as_raw_fd());
        let text = std::fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
        Self::parse(&path, &text)
    }

    /// Parses the fdinfo text read from `path` (named in failures).
    pub(crate) fn parse(path: &str, text: &str) -> Result<Self, String> {
        let mut fields = BTreeMap::new();
        let mut irqfds = BTreeMap::new();
        let mut order = Vec::new();
        for raw in text.lines() {
            let (key, value) = raw
                .split_once(':')
                .ok_or_else(|| format!("{path}: line without a colon: {raw:?}"))?;
            let value = value.trim();
            if key != "irqfd" {
                fields.insert(key.to_string(), value.to_string());
                continue;
            }
            let mut l = Line::default();
            let keys: Vec<&str> = value
                .split_whitespace()
                .map(|kv| kv.split_once('=').map_or(kv, |(k, _)| k))
                .collect();
            if keys != IRQFD_FIELDS {
                return Err(format!(
                    "{path}: irqfd line with fields {keys:?}, expected {IRQFD_FIELDS:?} in \
                     that order: {raw:?}"
                ));
            }
            for kv in value.split_whitespace() {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("{path}: bad irqfd field {kv:?} in {raw:?}"))?;
                let n: u64 = v.parse().map_err(|e| format!("{path}: {kv:?}: {e}"))?;
                let small = || u32::try_from(n).map_err(|_| format!("{path}: {kv:?} too large"));
                match k {
                    "gsi" => l.gsi = small()?,
                    "fd" => l.fd = small()?,
                    "signals" => l.signals = n,
                    "fast" => l.fast = n,
                    "deferred" => l.deferred = n,
                    "coalesced" => l.coalesced = n,
                    "masked" => l.masked = n,
                    "resample" => l.resample = small()?,
                    _ => return Err(format!("{path}: unknown irqfd field {k:?} in {raw:?}")),
                }
            }
            let fd = l.fd;
            if irqfds.insert(fd, l).is_some() {
                return Err(format!(
                    "{path}: an irqfd listed twice (two lines with fd {fd}):\n{text}"
                ));
            }
            order.push(fd);
        }
        Ok(Self {
            fields,
            irqfds,
            order,
        })
    }

    /// The numeric field `key`.
    pub(crate) fn field(&self, key: &str) -> Result<u64, String> {
        let v = self
            .fields
            .get(key)
            .ok_or_else(|| format!("fdinfo has no {key:?} line: {:?}", self.fields))?;
        v.parse().map_err(|e| format!("fdinfo {key}: {v:?}: {e}"))
    }
}

/// Three irqfds, signalled 2, 1 and 0 times without reading in between:
/// fdinfo shows the context's counters and one line per irqfd with its gsi,
/// the fd given at assign and its counters (on the fast path every signal
/// is one fast injection; the second one on a GSI coalesces). A deassign
/// removes its line.
fn fdinfo_lists_irqfds(env: &Env) -> TestResult {
    let c = env.open()?;
    let efds = [new_eventfd()?, new_eventfd()?, new_eventfd()?];
    for (i, e) in efds.iter().enumerate() {
        ok(&format!("assign(gsi {})", i + 1), c.assign(e, i as u32 + 1))?;
    }
    inject(env, &c, &efds[0], 1, 1)?;
    signal(&efds[0])?;
    signal(&efds[1])?;
    wait_injected(env, &c, 1, 2)?;
    wait_injected(env, &c, 2, 1)?;

    let info = FdInfo::read(&c)?;
    eq(
        "rust_irqfd-abi",
        info.field("rust_irqfd-abi")?,
        u64::from(RUST_IRQFD_ABI_VERSION),
    )?;
    eq("nr_gsis", info.field("nr_gsis")?, u64::from(env.nr_gsis()))?;
    eq(
        "max_irqfds",
        info.field("max_irqfds")?,
        u64::from(env.info.max_irqfds),
    )?;
    eq("irqfds", info.field("irqfds")?, 3)?;
    eq("shutdowns", info.field("shutdowns")?, 0)?;
    eq("irqfd lines", info.irqfds.len(), 3)?;
    for (i, (e, sent)) in efds.iter().zip([2u64, 1, 0]).enumerate() {
        let fd = e.as_raw_fd() as u32;
        let l = info
            .irqfds
            .get(&fd)
            .ok_or_else(|| format!("no irqfd line for fd {fd}: {:?}", info.irqfds))?;
        eq(&format!("gsi of fd {fd}"), l.gsi, i as u32 + 1)?;
        if env.deferred() {
            // Signals that arrive while the work is queued may merge (C).
            ensure(
                l.signals == sent
                    && l.fast == 0
                    && l.deferred <= sent
                    && (sent == 0) == (l.deferred == 0)
                    && l.masked == 0
                    && l.resample == 0,
                || format!("fd {fd}, {sent} signal(s), deferred mode: {l:?}"),
            )?;
        } else {
            let want = Line {
                gsi: i as u32 + 1,
                fd,
                signals: sent,
                fast: sent,
                deferred: 0,
                coalesced: sent.saturating_sub(1),
                masked: 0,
                resample: 0,
            };
            eq(&format!("irqfd line of fd {fd}"), l.clone(), want)?;
        }
    }

    drain(&c)?;
    ok("deassign(gsi 2)", c.deassign(&efds[1], 2))?;
    let info = FdInfo::read(&c)?;
    eq("irqfds after a deassign", info.field("irqfds")?, 2)?;
    eq("shutdowns after a deassign", info.field("shutdowns")?, 1)?;
    ensure(
        !info.irqfds.contains_key(&(efds[1].as_raw_fd() as u32)),
        || format!("the deassigned irqfd is still listed: {:?}", info.irqfds),
    )?;
    eq("irqfd lines after a deassign", info.irqfds.len(), 2)?;
    ok("close(context)", c.close())
}

/// The v2 fields: an edge irqfd on a masked GSI counts the injections that
/// hit the mask (`masked=`, which unmask does not reset), a resample irqfd
/// shows `resample=1` and the others `resample=0`; fdinfo goes on listing
/// a resample irqfd whose resamplefd userspace has closed.
fn fdinfo_masked_resample(env: &Env) -> TestResult {
    let c = env.open()?;
    let edge = new_eventfd()?;
    let level = new_eventfd()?;
    let rfd = new_eventfd()?;
    let plain = new_eventfd()?;
    ok("assign(edge eventfd, gsi 1)", c.assign(&edge, 1))?;
    ok(
        "assign(eventfd, gsi 2, RESAMPLE)",
        c.assign_resample(&level, 2, &rfd),
    )?;
    ok("assign(eventfd, gsi 3)", c.assign(&plain, 3))?;
    mask(&c, 1, true)?;
    for i in 1..=2 {
        inject(env, &c, &edge, 1, i)?;
    }
    inject(env, &c, &level, 2, 1)?;
    inject(env, &c, &plain, 3, 1)?;
    mask(&c, 1, false)?;
    inject(env, &c, &edge, 1, 3)?;
    ok("close(resamplefd)", crate::sys::close(rfd))?;

    let info = FdInfo::read(&c)?;
    eq("irqfd lines", info.irqfds.len(), 3)?;
    let line = |e: &std::os::fd::OwnedFd| -> Result<Line, String> {
        let fd = e.as_raw_fd() as u32;
        info.irqfds
            .get(&fd)
            .cloned()
            .ok_or_else(|| format!("no irqfd line for fd {fd}: {:?}", info.irqfds))
    };
    let (le, ll, lp) = (line(&edge)?, line(&level)?, line(&plain)?);
    eq(
        "edge irqfd on the masked gsi: (gsi, signals, masked, resample)",
        (le.gsi, le.signals, le.masked, le.resample),
        (1, 3, 2, 0),
    )?;
    eq(
        "resample irqfd (resamplefd closed): (gsi, signals, masked, resample)",
        (ll.gsi, ll.signals, ll.masked, ll.resample),
        (2, 1, 0, 1),
    )?;
    eq(
        "plain irqfd: (gsi, signals, masked, resample)",
        (lp.gsi, lp.signals, lp.masked, lp.resample),
        (3, 1, 0, 0),
    )?;
    // Each signal's injection was waited for before the next signal: none
    // merged. (Latched injections are left out: whether they count as
    // fast or deferred is not specified.)
    for l in [&ll, &lp] {
        ensure(l.fast + l.deferred == l.signals, || {
            format!("one injection per signal, each waited for: fast + deferred != signals: {l:?}")
        })?;
    }
    drain(&c)?;
    ok("close(context)", c.close())
}

/// What an irqfd line must say of an irqfd the test bound: (gsi, resample).
type Binding = (u32, u32);

/// The irqfd lines of `info` must be exactly `want` (fd -> binding): every
/// bound irqfd listed, once (the parser refuses a second line with one fd),
/// with its gsi and resample flag, and nothing else; and the counters must
/// agree: `irqfds:` and `nr_irqfds` are the number bound, `shutdowns:` and
/// GET_INFO's `shutdowns` the number deassigned.
fn expect_listing(
    c: &Ctx,
    info: &FdInfo,
    want: &BTreeMap<u32, Binding>,
    shutdowns: u64,
    when: &str,
) -> TestResult {
    let missing: Vec<_> = want
        .keys()
        .filter(|fd| !info.irqfds.contains_key(fd))
        .collect();
    let extra: Vec<_> = info
        .irqfds
        .keys()
        .filter(|fd| !want.contains_key(fd))
        .collect();
    ensure(missing.is_empty() && extra.is_empty(), || {
        format!(
            "fdinfo {when}: {} irqfd line(s) for {} bound irqfds; bound but not listed: fd \
             {missing:?}; listed but not bound: fd {extra:?} (fds in listing order: {:?})",
            info.irqfds.len(),
            want.len(),
            info.order
        )
    })?;
    for (fd, &(gsi, resample)) in want {
        let l = &info.irqfds[fd];
        eq(
            &format!("fdinfo {when}: (gsi, resample) of fd {fd}"),
            (l.gsi, l.resample),
            (gsi, resample),
        )?;
    }
    let n = want.len() as u64;
    eq(&format!("fdinfo irqfds: {when}"), info.field("irqfds")?, n)?;
    eq(
        &format!("fdinfo shutdowns: {when}"),
        info.field("shutdowns")?,
        shutdowns,
    )?;
    let gi = ok("RUST_IRQFD_GET_INFO", c.info())?;
    eq(
        &format!("GET_INFO (nr_irqfds, shutdowns) {when}"),
        (u64::from(gi.nr_irqfds), gi.shutdowns),
        (n, shutdowns),
    )
}

/// Several chunks of irqfds: the modules copy the list a chunk at a time
/// under their lock and resume by eventfd key (Rust: 32 per chunk, C: 8),
/// so counts at and past the chunk boundaries, every
/// fourth irqfd a resample one, on seven GSIs. fdinfo lists every bound
/// irqfd exactly once with its gsi and resample flag, and its counters and
/// GET_INFO's agree. Then every other irqfd in listing order is deassigned
/// (holes on both sides of every chunk boundary): the listing is exactly
/// the survivors, in the same relative order (eventfd order is stable).
fn fdinfo_paging(env: &Env) -> TestResult {
    for n in PAGING_COUNTS {
        paging_case(env, n).map_err(|m| format!("{n} irqfds: {m}"))?;
    }
    Ok(())
}

/// [`fdinfo_paging`] with `n` irqfds in a fresh context.
fn paging_case(env: &Env, n: usize) -> TestResult {
    let c = env.open()?;
    let mut efds = Vec::with_capacity(n);
    let mut rfds = Vec::new();
    let mut want = BTreeMap::new();
    for i in 0..n {
        let e = new_eventfd()?;
        let fd = e.as_raw_fd() as u32;
        let binding = if i % 4 == 3 {
            let gsi = 6 + (i as u32 / 4) % 2;
            let r = new_eventfd()?;
            ok(
                &format!("assign(eventfd {i}, gsi {gsi}, RESAMPLE)"),
                c.assign_resample(&e, gsi, &r),
            )?;
            rfds.push(r);
            (gsi, 1)
        } else {
            let gsi = 1 + i as u32 % 5;
            ok(
                &format!("assign(eventfd {i}, gsi {gsi})"),
                c.assign(&e, gsi),
            )?;
            (gsi, 0)
        };
        want.insert(fd, binding);
        efds.push(e);
    }
    let info = FdInfo::read(&c)?;
    expect_listing(&c, &info, &want, 0, &format!("with {n} irqfds bound"))?;

    // Every other one in listing order, the first included.
    let order = info.order.clone();
    let mut deassigned = 0u64;
    for fd in order.iter().step_by(2) {
        let e = efds
            .iter()
            .find(|e| e.as_raw_fd() as u32 == *fd)
            .ok_or_else(|| format!("internal: no eventfd with number {fd}"))?;
        let (gsi, _) = want[fd];
        ok(&format!("deassign(fd {fd}, gsi {gsi})"), c.deassign(e, gsi))?;
        want.remove(fd);
        deassigned += 1;
    }
    let info = FdInfo::read(&c)?;
    expect_listing(
        &c,
        &info,
        &want,
        deassigned,
        &format!("after deassigning every other one of {n} in listing order"),
    )?;
    let survivors: Vec<u32> = order.iter().skip(1).step_by(2).copied().collect();
    eq(
        "fds in listing order after the deassigns (the survivors, in their order before)",
        info.order,
        survivors,
    )?;
    ok("close(context)", c.close())
}
