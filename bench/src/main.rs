// SPDX-License-Identifier: GPL-2.0
//! rust_irqfd_bench: one measurement per invocation, printed as one JSON line.
//!
//! `scripts/payload-bench.sh` runs it in the guest, interleaving the Rust
//! module, the C reference and the raw eventfd floor round after round;
//! `scripts/bench-report.py` turns the lines into ratios, a table and a plot.
//! Nothing here judges a number: absolute times under TCG are noise, only
//! ratios taken side by side mean anything.
//!
//! ```text
//! rust_irqfd_bench latency    --label L --round R --samples N (--device PATH | --floor)
//! rust_irqfd_bench throughput --label L --round R --device PATH --irqfds N --writers W --millis MS
//! rust_irqfd_bench scale      --label L --round R --device PATH --n N
//! rust_irqfd_bench memory     --label L --device PATH --n N [--tracing DIR]
//! rust_irqfd_bench stages     --label L --samples N (--device PATH | --floor) [--tracing DIR]
//! rust_irqfd_bench irqsoff    --label L --device PATH --n N [--tracing DIR]
//! ```
//!
//! `irqsoff` is not a benchmark but a measurement for `make irqsoff`: the
//! longest interrupts-off section of each operation (see [`irqsoff`]).

mod irqsoff;
mod memory;
mod stages;
mod tracefs;

use std::os::fd::{AsFd, BorrowedFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use rust_irqfd_vmm::abi::module::Delivery;
use rust_irqfd_vmm::{EventFd, IrqFdBackend, ModuleBackend};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use rustix::io::{read, Errno};
use rustix::process::{getrlimit, setrlimit, Resource};

type Res<T> = Result<T, String>;

/// Signals sent before the measured ones, to warm caches and wake workers.
const WARMUP: usize = 50;
/// How long the writer waits for one delivery before calling it lost.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rust_irqfd_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The command line: a mode, then `--name value` pairs (and `--floor`).
struct Args<'a> {
    pairs: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> Args<'a> {
    fn parse(args: &'a [String]) -> Res<Self> {
        let mut pairs = Vec::new();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {a:?}"))?;
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().map(String::as_str),
                _ => None,
            };
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| *v)
    }

    fn flag(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| *n == name)
    }

    fn str(&self, name: &str) -> Res<&'a str> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    fn num(&self, name: &str) -> Res<u64> {
        let v = self.str(name)?;
        v.parse().map_err(|e| format!("--{name} {v:?}: {e}"))
    }
}

fn run(args: &[String]) -> Res<String> {
    let (mode, rest) = args
        .split_first()
        .ok_or("usage: rust_irqfd_bench latency|throughput|scale|memory|irqsoff --label L ...")?;
    let a = Args::parse(rest)?;
    let label = a.str("label")?;
    let round = a.get("round").unwrap_or("0");
    let head = format!(r#""kind":"{mode}","label":"{label}","round":{round}"#);
    match mode.as_str() {
        "latency" => {
            let samples = to_usize(a.num("samples")?)?;
            let ns = if a.flag("floor") {
                latency_floor(samples)?
            } else {
                latency_device(a.str("device")?, samples)?
            };
            Ok(format!("{{{head},\"ns\":{}}}", json_list(&ns)))
        }
        "throughput" => {
            let irqfds = to_usize(a.num("irqfds")?)?;
            let writers = to_usize(a.num("writers")?)?;
            let t = throughput(
                a.str("device")?,
                irqfds,
                writers,
                Duration::from_millis(a.num("millis")?),
            )?;
            Ok(format!(
                "{{{head},\"irqfds\":{irqfds},\"writers\":{writers},\"writes\":{},\"injected\":{},\"records\":{},\"ns\":{}}}",
                t.writes, t.injected, t.records, t.ns
            ))
        }
        "scale" => {
            let n = to_usize(a.num("n")?)?;
            let s = scale(a.str("device")?, n)?;
            Ok(format!(
                "{{{head},\"n\":{n},\"assign_ns\":{},\"deassign_ns\":{},\"release_ns\":{}}}",
                s.assign_ns, s.deassign_ns, s.release_ns
            ))
        }
        "memory" => {
            let n = to_usize(a.num("n")?)?;
            let dir = a.get("tracing").unwrap_or("/sys/kernel/tracing");
            let r = memory::memory(a.str("device")?, n, std::path::Path::new(dir))?;
            Ok(format!("{{{head},{r}}}"))
        }
        "stages" => {
            let samples = to_usize(a.num("samples")?)?;
            let dir = a.get("tracing").unwrap_or("/sys/kernel/tracing");
            let device = if a.flag("floor") {
                None
            } else {
                Some(a.str("device")?)
            };
            let r = stages::run(device, samples, std::path::Path::new(dir))?;
            Ok(format!("{{{head},{r}}}"))
        }
        "irqsoff" => {
            let n = to_usize(a.num("n")?)?;
            let dir = a.get("tracing").unwrap_or("/sys/kernel/tracing");
            let r = irqsoff::irqsoff(a.str("device")?, n, std::path::Path::new(dir))?;
            Ok(format!("{{{head},{r}}}"))
        }
        m => Err(format!("unknown mode {m:?}")),
    }
}

fn to_usize(v: u64) -> Res<usize> {
    usize::try_from(v).map_err(|_| format!("{v} is too large"))
}

fn json_list(v: &[u64]) -> String {
    let items: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(","))
}

fn err(what: &str) -> impl Fn(rust_irqfd_vmm::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Nanoseconds since `base`, plus one, so that 0 can mean "nothing yet".
fn stamp(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// A context of `path` whose reads block (the vmm crate opens it
/// non-blocking; the benchmark's reader wants to sleep like a vCPU thread).
fn open_blocking(path: &str) -> Res<ModuleBackend> {
    let b = ModuleBackend::open(path).map_err(err("open"))?;
    let fl = fcntl_getfl(b.context_fd()).map_err(|e| format!("F_GETFL: {e}"))?;
    fcntl_setfl(b.context_fd(), fl - OFlags::NONBLOCK).map_err(|e| format!("F_SETFL: {e}"))?;
    Ok(b)
}

/// Reads delivery records into `buf`; the sum of their counts and how many.
fn read_records(ctx: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(u64, u64), Errno> {
    let n = read(ctx, &mut *buf)?;
    let mut injected = 0;
    let mut records = 0;
    for rec in buf
        .get(..n)
        .unwrap_or_default()
        .chunks_exact(Delivery::SIZE)
    {
        if let Some(d) = Delivery::from_bytes(rec) {
            injected += d.count;
            records += 1;
        }
    }
    Ok((injected, records))
}

/// Write-to-wakeup latency: the writer (this thread) signals, a reader
/// thread blocked in `wait` wakes and stamps the time; one signal in flight.
fn ping_pong(efd: &EventFd, samples: usize, wait: &(dyn Fn() -> Res<()> + Sync)) -> Res<Vec<u64>> {
    let base = Instant::now();
    let arrived = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut out = Vec::with_capacity(samples);
    std::thread::scope(|s| -> Res<()> {
        let reader = s.spawn(|| -> Res<()> {
            loop {
                wait()?;
                let t = stamp(base);
                if stop.load(Ordering::Acquire) {
                    return Ok(());
                }
                arrived.store(t, Ordering::Release);
            }
        });
        let mut result = Ok(());
        for i in 0..WARMUP + samples {
            arrived.store(0, Ordering::Relaxed);
            let t0 = stamp(base);
            if let Err(e) = efd.signal() {
                result = Err(format!("signal: {e}"));
                break;
            }
            let t1 = loop {
                let t = arrived.load(Ordering::Acquire);
                if t != 0 {
                    break Some(t);
                }
                if base.elapsed() > Duration::from_nanos(t0) + DELIVERY_TIMEOUT {
                    break None;
                }
                std::hint::spin_loop();
            };
            let Some(t1) = t1 else {
                result = Err(format!("sample {i}: no wakeup within {DELIVERY_TIMEOUT:?}"));
                break;
            };
            if i >= WARMUP {
                out.push(t1.saturating_sub(t0));
            }
        }
        stop.store(true, Ordering::Release);
        // Wake the reader one last time so that it sees `stop`.
        efd.signal().map_err(|e| format!("signal: {e}"))?;
        reader
            .join()
            .unwrap_or_else(|_| Err("reader panicked".into()))?;
        result
    })?;
    Ok(out)
}

/// The floor: a raw eventfd, the reader blocked in `read(2)` on it.
fn latency_floor(samples: usize) -> Res<Vec<u64>> {
    let efd = EventFd::new().map_err(err("eventfd"))?;
    ping_pong(&efd, samples, &|| {
        efd.read().map(drop).map_err(|e| format!("read: {e}"))
    })
}

/// Through the module: the eventfd is bound to GSI 0 of a context, the
/// reader blocked in `read(2)` on the context.
fn latency_device(path: &str, samples: usize) -> Res<Vec<u64>> {
    let b = open_blocking(path)?;
    let efd = EventFd::new().map_err(err("eventfd"))?;
    b.assign(efd.as_fd(), 0).map_err(err("assign"))?;
    let ctx = b.context_fd();
    let wait = || -> Res<()> {
        let mut buf = [0u8; Delivery::SIZE];
        read_records(ctx, &mut buf)
            .map(drop)
            .map_err(|e| format!("read(context): {e}"))
    };
    let r = ping_pong(&efd, samples, &wait);
    b.deassign(efd.as_fd(), 0).map_err(err("deassign"))?;
    r
}

/// Enough descriptors for `n` eventfds and some slack.
fn raise_nofile(n: usize) -> Res<()> {
    let want = u64::try_from(n).unwrap_or(u64::MAX).saturating_add(256);
    let cur = getrlimit(Resource::Nofile);
    if cur.current.is_some_and(|c| c >= want) {
        return Ok(());
    }
    let lim = rustix::process::Rlimit {
        current: Some(want),
        maximum: Some(want.max(cur.maximum.unwrap_or(0))),
    };
    setrlimit(Resource::Nofile, lim).map_err(|e| format!("RLIMIT_NOFILE {want}: {e}"))
}

fn eventfds(n: usize) -> Res<Vec<EventFd>> {
    raise_nofile(n)?;
    (0..n)
        .map(|_| EventFd::new().map_err(err("eventfd")))
        .collect()
}

fn elapsed_ns(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

struct Throughput {
    writes: u64,
    injected: u64,
    records: u64,
    ns: u64,
}

/// `writers` threads signal `irqfds` bound eventfds round-robin for
/// `duration`; one reader drains the context. Every write must come back as
/// an injection (the fast path loses nothing and the counts add up).
fn throughput(path: &str, irqfds: usize, writers: usize, duration: Duration) -> Res<Throughput> {
    let b = open_blocking(path)?;
    let nr = b.nr_gsis().max(1);
    let efds = eventfds(irqfds)?;
    for (i, e) in efds.iter().enumerate() {
        let gsi = u32::try_from(i).map_err(|_| "too many irqfds")? % nr;
        b.assign(e.as_fd(), gsi).map_err(err("assign"))?;
    }
    let ctx = b.context_fd();
    let stop_reader = AtomicBool::new(false);
    let writes = AtomicU64::new(0);
    let start = Barrier::new(writers + 1);
    let (injected, records, ns) = std::thread::scope(|s| -> Res<(u64, u64, u64)> {
        let reader = s.spawn(|| -> Res<(u64, u64)> {
            let mut buf = vec![0u8; 64 * Delivery::SIZE];
            let (mut inj, mut recs) = (0, 0);
            loop {
                let (i, r) = read_records(ctx, &mut buf).map_err(|e| format!("read: {e}"))?;
                inj += i;
                recs += r;
                if stop_reader.load(Ordering::Acquire) {
                    // Drain what is left without sleeping, then stop.
                    let fl = fcntl_getfl(ctx).map_err(|e| format!("F_GETFL: {e}"))?;
                    fcntl_setfl(ctx, fl | OFlags::NONBLOCK).map_err(|e| format!("F_SETFL: {e}"))?;
                    loop {
                        match read_records(ctx, &mut buf) {
                            Ok((0, _)) | Err(Errno::AGAIN) => return Ok((inj, recs)),
                            Ok((i, r)) => {
                                inj += i;
                                recs += r;
                            }
                            Err(e) => return Err(format!("read: {e}")),
                        }
                    }
                }
            }
        });
        let threads: Vec<_> = (0..writers)
            .map(|w| {
                let (efds, writes, start) = (&efds, &writes, &start);
                s.spawn(move || -> Res<()> {
                    start.wait();
                    let t = Instant::now();
                    let mut i = w * 7;
                    let mut n = 0u64;
                    while t.elapsed() < duration {
                        for _ in 0..64 {
                            let e = efds.get(i % efds.len()).ok_or("no eventfd")?;
                            e.signal().map_err(|e| format!("signal: {e}"))?;
                            i += 1;
                            n += 1;
                        }
                    }
                    writes.fetch_add(n, Ordering::Relaxed);
                    Ok(())
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        let mut first_err = None;
        for w in threads {
            if let Err(e) = w.join().unwrap_or_else(|_| Err("writer panicked".into())) {
                first_err.get_or_insert(e);
            }
        }
        let ns = elapsed_ns(t);
        stop_reader.store(true, Ordering::Release);
        // One more signal, so that a reader asleep on an empty context wakes.
        if let Some(e) = efds.first() {
            e.signal().map_err(|e| format!("signal: {e}"))?;
            writes.fetch_add(1, Ordering::Relaxed);
        }
        let (inj, recs) = reader
            .join()
            .unwrap_or_else(|_| Err("reader panicked".into()))?;
        first_err.map_or(Ok((inj, recs, ns)), Err)
    })?;
    let writes = writes.load(Ordering::Relaxed);
    if injected != writes {
        return Err(format!("{writes} writes but {injected} injections read"));
    }
    Ok(Throughput {
        writes,
        injected,
        records,
        ns,
    })
}

struct Scale {
    assign_ns: u64,
    deassign_ns: u64,
    release_ns: u64,
}

/// Assign `n` irqfds, deassign them in a shuffled order, assign them again
/// and close the context: the time of each phase.
fn scale(path: &str, n: usize) -> Res<Scale> {
    let efds = eventfds(n)?;
    let b = ModuleBackend::open(path).map_err(err("open"))?;
    let nr = b.nr_gsis().max(1);
    let gsi = |i: usize| u32::try_from(i % nr as usize).unwrap_or(0);
    let assign_all = |b: &ModuleBackend| -> Res<u64> {
        let t = Instant::now();
        for (i, e) in efds.iter().enumerate() {
            b.assign(e.as_fd(), gsi(i)).map_err(err("assign"))?;
        }
        Ok(elapsed_ns(t))
    };
    let assign_ns = assign_all(&b)?;
    // A fixed shuffle (64-bit LCG, Fisher-Yates), the same for both modules.
    let mut order: Vec<usize> = (0..n).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..n).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from((x >> 33) % (i as u64 + 1)).unwrap_or(0);
        order.swap(i, j);
    }
    let t = Instant::now();
    for &i in &order {
        let e = efds.get(i).ok_or("index")?;
        b.deassign(e.as_fd(), gsi(i)).map_err(err("deassign"))?;
    }
    let deassign_ns = elapsed_ns(t);
    assign_all(&b)?;
    let t = Instant::now();
    drop(b);
    let release_ns = elapsed_ns(t);
    Ok(Scale {
        assign_ns,
        deassign_ns,
        release_ns,
    })
}
