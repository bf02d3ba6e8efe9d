// SPDX-License-Identifier: GPL-2.0
//! Assertions on what `read(2)` of a context gives: its delivery records.

use std::os::fd::AsFd;

use crate::abi::{RustIrqfdDelivery, DELIVERY_LEVEL, DELIVERY_MSI};
use crate::dev::Ctx;

use super::{ensure, eq, signal, wait_until, Env, TestResult};

/// One non-blocking read of up to `max` records: `Ok(vec![])` on `EAGAIN`.
pub fn try_read(ctx: &Ctx, max: usize) -> Result<Vec<RustIrqfdDelivery>, String> {
    match ctx.read_records(max) {
        Ok(v) if v.is_empty() => {
            Err("read(context) returned 0 bytes (EOF); expected records or EAGAIN".into())
        }
        Ok(v) => Ok(v),
        Err(e) if e.0 == libc::EAGAIN => Ok(Vec::new()),
        Err(e) if e.0 == libc::EIO => Err("read(context) returned a partial record".into()),
        Err(e) => Err(format!(
            "read(context): expected records or EAGAIN, got {e}"
        )),
    }
}

/// Reads until at least `n` records have come, within the timeout.
pub fn read_n(env: &Env, ctx: &Ctx, n: usize) -> Result<Vec<RustIrqfdDelivery>, String> {
    let mut got = Vec::new();
    wait_until(env, &format!("{n} record(s) from read(2)"), || {
        got.extend(try_read(ctx, 16)?);
        Ok((got.len() >= n, format!("{} record(s): {got:?}", got.len())))
    })?;
    Ok(got)
}

/// Reads everything pending now (until `EAGAIN`).
pub fn drain(ctx: &Ctx) -> Result<Vec<RustIrqfdDelivery>, String> {
    let mut all = Vec::new();
    loop {
        let v = try_read(ctx, 16)?;
        if v.is_empty() {
            return Ok(all);
        }
        all.extend(v);
    }
}

/// `read(2)` must give `EAGAIN`: nothing is pending.
pub fn expect_nothing(ctx: &Ctx, when: &str) -> TestResult {
    match ctx.read_records(16) {
        Err(e) if e.0 == libc::EAGAIN => Ok(()),
        Err(e) => Err(format!("read {when}: expected EAGAIN, got {e}")),
        Ok(v) => Err(format!("read {when}: expected EAGAIN, got record(s) {v:?}")),
    }
}

/// A record is well formed: seq and count >= 1, gsi in range, only known
/// flags, pad zero, and its MSI fields consistent with its flags (with
/// `DELIVERY_MSI`: a nonzero, 4-byte aligned address; without: both 0).
pub fn check_record_any(d: &RustIrqfdDelivery, nr_gsis: u32) -> TestResult {
    ensure(d.seq >= 1, || format!("record with seq 0: {d:?}"))?;
    ensure(d.count >= 1, || format!("record with count 0: {d:?}"))?;
    ensure(d.gsi < nr_gsis, || {
        format!("record gsi {} >= nr_gsis {nr_gsis}: {d:?}", d.gsi)
    })?;
    ensure(d.pad == 0, || format!("record with non-zero pad: {d:?}"))?;
    ensure(d.flags & !(DELIVERY_MSI | DELIVERY_LEVEL) == 0, || {
        format!("record with unknown flags {:#x}: {d:?}", d.flags)
    })?;
    if d.flags & DELIVERY_MSI != 0 {
        ensure(d.msi_addr != 0 && d.msi_addr & 3 == 0, || {
            format!("MSI record with an address that SET_ROUTE refuses: {d:?}")
        })
    } else {
        ensure(d.msi_addr == 0 && d.msi_data == 0, || {
            format!("record without the MSI flag but with msi_addr/msi_data: {d:?}")
        })
    }
}

/// A plain record (no route, no level): well formed and flags 0.
pub fn check_record(d: &RustIrqfdDelivery, nr_gsis: u32) -> TestResult {
    check_record_any(d, nr_gsis)?;
    ensure(d.flags == 0, || {
        format!("record with non-zero flags/msi/pad: {d:?}")
    })
}

/// Exactly one record, for `gsi` with `count`; returns it.
pub fn one_record(env: &Env, ctx: &Ctx, gsi: u32, count: u64) -> Result<RustIrqfdDelivery, String> {
    let mut v = read_n(env, ctx, 1)?;
    v.extend(drain(ctx)?);
    eq("number of records", v.len(), 1).map_err(|e| format!("{e}: {v:?}"))?;
    let d = v[0];
    check_record(&d, env.nr_gsis())?;
    eq("record gsi", d.gsi, gsi)?;
    eq("record count", d.count, count)?;
    Ok(d)
}

/// Signals `efd`, bound to `gsi`, and reads the one record (count 1) that
/// this raises; returns it.
pub fn signal_one(
    env: &Env,
    ctx: &Ctx,
    efd: impl AsFd,
    gsi: u32,
) -> Result<RustIrqfdDelivery, String> {
    signal(efd)?;
    one_record(env, ctx, gsi, 1)
}
