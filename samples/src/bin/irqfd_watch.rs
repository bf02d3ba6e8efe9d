// SPDX-License-Identifier: GPL-2.0
//! irqfd-watch: bind an eventfd to a GSI, signal it, and watch the deliveries.
//!
//! usage: irqfd-watch [DEVICE]   (default /dev/rust_irqfd)

use std::fs::{File, OpenOptions};
use std::io::{Error, Read, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

const MAGIC: u64 = 0xB9;
const fn ioc(dir: u64, nr: u64, size: u64) -> u64 {
    (dir << 30) | (size << 16) | (MAGIC << 8) | nr
}
const IOCTL_IRQFD: u64 = ioc(1, 0x76, 32);
const IOCTL_GET_INFO: u64 = ioc(2, 0x00, 32);
const IOCTL_GSI_STATS: u64 = ioc(3, 0x01, 48);
const FLAG_DEASSIGN: u32 = 1;

#[repr(C)]
#[derive(Default)]
struct Irqfd {
    fd: u32,
    gsi: u32,
    flags: u32,
    resamplefd: u32,
    pad: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct Info {
    version: u32,
    nr_gsis: u32,
    flags: u32,
    nr_irqfds: u32,
    shutdowns: u64,
    reserved: [u8; 8],
}

#[repr(C)]
#[derive(Default)]
struct GsiStats {
    gsi: u32,
    pad: u32,
    injected: u64,
    raised: u64,
    coalesced: u64,
    delivered: u64,
    pending: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Delivery {
    seq: u64,
    gsi: u32,
    flags: u32,
    count: u64,
    msi_addr: u64,
    msi_data: u32,
    pad: u32,
}

fn ioctl<T>(file: &File, cmd: u64, arg: &mut T) -> Result<()> {
    // SAFETY: `arg` is a live, exclusively borrowed `#[repr(C)]` struct of the size encoded in
    // `cmd`.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), cmd as _, arg as *mut T) };
    if r < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(())
    }
}

fn eventfd() -> Result<OwnedFd> {
    // SAFETY: eventfd(2) has no memory arguments.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn signal(efd: &OwnedFd) -> Result<()> {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer.
    let r = unsafe { libc::write(efd.as_raw_fd(), one.as_ptr().cast(), 8) };
    if r != 8 {
        return Err(Error::last_os_error());
    }
    Ok(())
}

fn read_deliveries(ctx: &mut File) -> Result<Vec<Delivery>> {
    let mut buf = [0u8; 40 * 16];
    let n = ctx.read(&mut buf)?;
    Ok(buf[..n]
        .chunks_exact(40)
        .map(|c| {
            let u64_at = |o: usize| u64::from_ne_bytes(c[o..o + 8].try_into().unwrap_or([0; 8]));
            let u32_at = |o: usize| u32::from_ne_bytes(c[o..o + 4].try_into().unwrap_or([0; 4]));
            Delivery {
                seq: u64_at(0),
                gsi: u32_at(8),
                flags: u32_at(12),
                count: u64_at(16),
                ..Default::default()
            }
        })
        .collect())
}

fn info(ctx: &File) -> Result<Info> {
    let mut info = Info::default();
    ioctl(ctx, IOCTL_GET_INFO, &mut info)?;
    Ok(info)
}

fn main() -> Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/dev/rust_irqfd".into());
    let gsi = 5;
    let mut ctx = OpenOptions::new().read(true).write(true).open(&path)?;
    let i = info(&ctx)?;
    println!("opened {path}: a context with {} GSIs (ABI v{})", i.nr_gsis, i.version);

    let efd = eventfd()?;
    let mut args = Irqfd { fd: efd.as_raw_fd() as u32, gsi, ..Default::default() };
    ioctl(&ctx, IOCTL_IRQFD, &mut args)?;
    println!("bound eventfd {} to GSI {gsi}: {} irqfd active", efd.as_raw_fd(), info(&ctx)?.nr_irqfds);

    signal(&efd)?;
    for d in read_deliveries(&mut ctx)? {
        println!("signalled once   -> delivery seq {} on GSI {} (count {})", d.seq, d.gsi, d.count);
    }
    for _ in 0..3 {
        signal(&efd)?;
    }
    for d in read_deliveries(&mut ctx)? {
        println!("signalled 3 times before reading -> delivery seq {} on GSI {} (count {}: coalesced)", d.seq, d.gsi, d.count);
    }
    let mut st = GsiStats { gsi, ..Default::default() };
    ioctl(&ctx, IOCTL_GSI_STATS, &mut st)?;
    println!(
        "GSI {gsi} counters: injected {} raised {} coalesced {} delivered {} pending {}",
        st.injected, st.raised, st.coalesced, st.delivered, st.pending
    );

    args.flags = FLAG_DEASSIGN;
    ioctl(&ctx, IOCTL_IRQFD, &mut args)?;
    println!("deassigned: {} irqfd active", info(&ctx)?.nr_irqfds);

    let efd2 = eventfd()?;
    let mut args2 = Irqfd { fd: efd2.as_raw_fd() as u32, gsi, ..Default::default() };
    ioctl(&ctx, IOCTL_IRQFD, &mut args2)?;
    drop(efd2);
    let t0 = Instant::now();
    while info(&ctx)?.nr_irqfds != 0 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    while info(&ctx)?.shutdowns != 2 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let i = info(&ctx)?;
    println!(
        "bound a second eventfd and closed it: the irqfd shut itself down (EPOLLHUP), {} active, {} shutdowns so far",
        i.nr_irqfds, i.shutdowns
    );
    println!("closing the context");
    Ok(())
}
