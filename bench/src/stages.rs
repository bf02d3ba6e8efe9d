// SPDX-License-Identifier: GPL-2.0
//! `rust_irqfd_bench stages`: where the time of one delivery goes, stage by
//! stage, from the kernel's own tracepoints.
//!
//! The latency ping-pong runs with the syscall and scheduler tracepoints on,
//! stamped by the TSC (`trace_clock` x86-tsc). For each sample:
//!
//! ```text
//! t0  the writer enters write(2) on the eventfd       raw_syscalls:sys_enter
//! t1  the reader is woken                             sched:sched_waking
//! t2  the writer's write(2) returns                   raw_syscalls:sys_exit
//! t3  the reader runs                                 sched:sched_switch
//! t4  the reader's read(2) returns a record           raw_syscalls:sys_exit
//! ```
//!
//! `signal` (t1 - t0) is the eventfd write, its wakeup and everything the
//! irqfd does up to waking the reader: the wait-queue callback, the route,
//! the injection, the record and the reader's wakeup (for the raw eventfd
//! floor, the eventfd's own wakeup of its reader). `schedule` (t3 - t1) is
//! the scheduler bringing the reader in; `read` (t4 - t3) is the reader's
//! way out of read(2): popping the record and copying it out. `write`
//! (t2 - t0) is the writer's whole syscall. Under `VM_ICOUNT=1` the TSC
//! follows the instruction count, so each stage is a path length; the
//! tracepoints add the same few instructions to every curve.
//!
//! Samples in which the reader was not asleep when the write came (it had
//! not got back into read(2) yet) have no wakeup and are counted apart.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Instant;

use rust_irqfd_vmm::abi::module::Delivery;
use rust_irqfd_vmm::{EventFd, IrqFdBackend};

use crate::{err, open_blocking, ping_pong, read_records, tracefs, Res};

const EVENTS: [&str; 4] = [
    "raw_syscalls/sys_enter",
    "raw_syscalls/sys_exit",
    "sched/sched_waking",
    "sched/sched_switch",
];

/// Per-CPU trace buffer, KiB.
const BUFFER_KB: &str = "8192";

const NR_READ: &str = "0";
const NR_WRITE: &str = "1";

/// One parsed trace line.
struct Event<'a> {
    comm: &'a str,
    pid: u32,
    tick: u64,
    name: &'a str,
    text: &'a str,
}

/// `  comm-PID  [CPU] flags  TICK: event: text` (a TSC clock prints ticks).
fn parse(line: &str) -> Option<Event<'_>> {
    let (head, rest) = line.split_once(": ")?;
    let (name, text) = rest.split_once(": ").unwrap_or((rest, ""));
    let mut words = head.split_whitespace();
    let task = words.next()?;
    let (comm, pid) = task.rsplit_once('-')?;
    let pid = pid.parse().ok()?;
    let tick = words.last()?.parse().ok()?;
    Some(Event {
        comm,
        pid,
        tick,
        name,
        text,
    })
}

/// The syscall number of a `sys_enter`/`sys_exit` text (`NR 1 (...)`, `NR 1 = 8`).
fn nr(text: &str) -> Option<&str> {
    text.strip_prefix("NR ")?.split_whitespace().next()
}

/// The stages of every sample, in ticks.
#[derive(Default)]
struct Stages {
    signal: Vec<u64>,
    schedule: Vec<u64>,
    read: Vec<u64>,
    write: Vec<u64>,
    /// Samples without a wakeup (the reader was not asleep).
    unslept: u64,
    /// Ticks per nanosecond of the process's clock, from the two markers.
    ticks_per_ns: f64,
}

/// The samples of writer `writer` in `trace`. The reader is the other thread
/// of the same name that calls read(2).
fn stages(trace: &str, writer: u32) -> Res<Stages> {
    let events = || {
        trace
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(parse)
    };
    let comm = events().find(|e| e.pid == writer).map(|e| e.comm);
    let reader = events()
        .find(|e| {
            e.pid != writer
                && Some(e.comm) == comm
                && e.name == "sys_enter"
                && nr(e.text) == Some(NR_READ)
        })
        .map(|e| e.pid)
        .ok_or("trace: no reader thread")?;
    let is_reader = |text: &str, name: &str| {
        tracefs::field(text, name).and_then(|p| p.parse::<u32>().ok()) == Some(reader)
    };
    let mut s = Stages::default();
    let (mut t0, mut t1, mut t2, mut t3) = (None, None, None::<u64>, None);
    let mut marks = Vec::new();
    for e in events() {
        match e.name {
            "tracing_mark_write" => {
                if let Some(ns) = e.text.trim().strip_prefix("stages ns=") {
                    let ns: u64 = ns.parse().map_err(|_| format!("marker {:?}", e.text))?;
                    marks.push((e.tick, ns));
                }
            }
            "sys_enter" if e.pid == writer && nr(e.text) == Some(NR_WRITE) => {
                (t0, t1, t2, t3) = (Some(e.tick), None, None, None);
            }
            "sys_exit" if e.pid == writer && nr(e.text) == Some(NR_WRITE) => {
                if let (Some(a), None) = (t0, t2) {
                    t2 = Some(e.tick);
                    s.write.push(e.tick.saturating_sub(a));
                }
            }
            "sched_waking" if t0.is_some() && t1.is_none() && is_reader(e.text, "pid") => {
                t1 = Some(e.tick);
            }
            "sched_switch" if t1.is_some() && t3.is_none() && is_reader(e.text, "next_pid") => {
                t3 = Some(e.tick);
            }
            "sys_exit" if e.pid == reader && nr(e.text) == Some(NR_READ) => {
                let Some(a) = t0.take() else { continue };
                match (t1, t3) {
                    (Some(b), Some(c)) => {
                        s.signal.push(b.saturating_sub(a));
                        s.schedule.push(c.saturating_sub(b));
                        s.read.push(e.tick.saturating_sub(c));
                    }
                    _ => s.unslept += 1,
                }
            }
            _ => {}
        }
    }
    if let [(k0, n0), .., (k1, n1)] = marks[..] {
        if n1 > n0 && k1 > k0 {
            s.ticks_per_ns = (k1 - k0) as f64 / (n1 - n0) as f64;
        }
    }
    if s.ticks_per_ns == 0.0 {
        return Err("trace: no pair of markers to scale ticks by".into());
    }
    Ok(s)
}

/// The median of `v`, in nanoseconds.
fn median_ns(v: &mut [u64], ticks_per_ns: f64) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2).map_or(0.0, |&t| t as f64 / ticks_per_ns)
}

/// Writes a marker with the process clock's nanoseconds since `base`.
fn mark(t: &tracefs::Events<'_>, base: Instant) -> Res<()> {
    let ns = base.elapsed().as_nanos();
    t.write("trace_marker", &format!("stages ns={ns}"))
}

/// The stages of `samples` deliveries through `path` (or of the raw eventfd
/// floor with `None`), as JSON fields: the median of each stage in
/// nanoseconds, and the sample counts.
pub fn run(path: Option<&str>, samples: usize, dir: &Path) -> Res<String> {
    let t = tracefs::Events::enable(dir, &EVENTS, BUFFER_KB, Some("x86-tsc"))?;
    let base = Instant::now();
    let efd = EventFd::new().map_err(err("eventfd"))?;
    let b = match path {
        Some(p) => {
            let b = open_blocking(p)?;
            b.assign(efd.as_fd(), 0).map_err(err("assign"))?;
            Some(b)
        }
        None => None,
    };
    t.record(|| {
        mark(&t, base)?;
        let r = match &b {
            Some(b) => {
                let ctx = b.context_fd();
                ping_pong(&efd, samples, &|| {
                    let mut buf = [0u8; Delivery::SIZE];
                    read_records(ctx, &mut buf)
                        .map(drop)
                        .map_err(|e| format!("read(context): {e}"))
                })
            }
            None => ping_pong(&efd, samples, &|| {
                efd.read().map(drop).map_err(|e| format!("read: {e}"))
            }),
        };
        mark(&t, base)?;
        r.map(drop)
    })?;
    if let Some(b) = &b {
        b.deassign(efd.as_fd(), 0).map_err(err("deassign"))?;
    }
    t.check_overrun()?;
    let trace = t.read("trace")?;
    let mut s = stages(&trace, std::process::id())?;
    let k = s.ticks_per_ns;
    Ok(format!(
        r#""samples":{},"unslept":{},"signal_ns":{:.1},"schedule_ns":{:.1},"read_ns":{:.1},"write_ns":{:.1},"ticks_per_ns":{:.4}"#,
        s.signal.len(),
        s.unslept,
        median_ns(&mut s.signal, k),
        median_ns(&mut s.schedule, k),
        median_ns(&mut s.read, k),
        median_ns(&mut s.write, k),
        k
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "\
# tracer: nop
 rust_irqfd_benc-50      [000] .....   1000: tracing_mark_write: stages ns=100
 rust_irqfd_benc-50      [000] .....   2000: sys_enter: NR 1 (3, 7ffc, 8, 0, 0, 0)
 rust_irqfd_benc-50      [000] d....   2100: sched_waking: comm=kworker/0:1 pid=9 prio=120 target_cpu=000
 rust_irqfd_benc-50      [000] d....   2300: sched_waking: comm=rust_irqfd_benc pid=51 prio=120 target_cpu=001
 rust_irqfd_benc-50      [000] .....   2500: sys_exit: NR 1 = 8
          <idle>-0       [001] d....   2900: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=rust_irqfd_benc next_pid=51 next_prio=120
 rust_irqfd_benc-51      [001] .....   3100: sys_exit: NR 0 = 32
 rust_irqfd_benc-51      [001] .....   3200: sys_enter: NR 0 (4, 7ffd, 32, 0, 0, 0)
 rust_irqfd_benc-50      [000] .....   4000: sys_enter: NR 1 (3, 7ffc, 8, 0, 0, 0)
 rust_irqfd_benc-50      [000] .....   4400: sys_exit: NR 1 = 8
 rust_irqfd_benc-51      [001] .....   4600: sys_exit: NR 0 = 32
 rust_irqfd_benc-50      [000] .....   5000: tracing_mark_write: stages ns=2100
";

    #[test]
    fn stages_of_each_sample() {
        let trace = format!(" rust_irqfd_benc-51      [001] .....   900: sys_enter: NR 0 (4, 7ffd, 32, 0, 0, 0)\n{TRACE}");
        let s = stages(&trace, 50).unwrap();
        assert_eq!(s.signal, [300]);
        assert_eq!(s.schedule, [600]);
        assert_eq!(s.read, [200]);
        assert_eq!(s.write, [500, 400]);
        assert_eq!(s.unslept, 1);
        assert!((s.ticks_per_ns - 2.0).abs() < 1e-9);
    }

    #[test]
    fn no_markers_is_an_error() {
        assert!(stages("", 50).is_err());
        let no_marks: String = TRACE
            .lines()
            .filter(|l| !l.contains("mark"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(stages(&no_marks, 50).is_err());
    }
}
