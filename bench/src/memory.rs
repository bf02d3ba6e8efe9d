// SPDX-License-Identifier: GPL-2.0
//! `rust_irqfd_bench memory`: what a context and an irqfd cost, counted by
//! allocation, from the kernel's kmem tracepoints.
//!
//! Slab growth (`Slab:` in /proc/meminfo) moves by whole slab pages and with
//! whatever else the guest allocates meanwhile; it measured the same module
//! at 153 and 279 bytes per irqfd in two runs. This counts instead: with the
//! kmem and percpu events on, for one step at a time (open a context, assign
//! `n` irqfds), every allocation the calling task made and had not freed by
//! the end of the step, at the size the allocator rounded it to
//! (`bytes_alloc`). Nothing else in the guest can change the figure, so it
//! is the same in every run.
//!
//! Slab pages themselves (`mm_page_alloc` for a new slab) are not counted: the
//! objects in them are.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::Path;

use rust_irqfd_vmm::{IrqFdBackend, ModuleBackend};

use crate::{err, eventfds, tracefs, Res};

/// The events that allocate (first) and free (second), by tracefs name.
const EVENTS: [&str; 6] = [
    "kmem/kmalloc",
    "kmem/kfree",
    "kmem/kmem_cache_alloc",
    "kmem/kmem_cache_free",
    "percpu/percpu_alloc_percpu",
    "percpu/percpu_free_percpu",
];

/// Per-CPU trace buffer, KiB: room for every event of the largest step.
const BUFFER_KB: &str = "16384";

/// One kind of allocation still live at the end of a step.
#[derive(PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Kind {
    /// The event (`kmalloc`, `kmem_cache_alloc`, `percpu_alloc_percpu`).
    event: String,
    /// Where it was made, without the offset (`irqfd_assign [c_irqfd]`).
    site: String,
    /// The cache, for `kmem_cache_alloc`.
    cache: String,
    bytes_req: u64,
    bytes_alloc: u64,
}

/// What one step left allocated.
struct Live {
    kinds: BTreeMap<Kind, u64>,
    /// Allocation and free events the step's task made (the parser saw the
    /// whole step when the counts of lost events are 0).
    events: u64,
}

impl Live {
    fn bytes(&self) -> u64 {
        self.kinds.iter().map(|(k, n)| k.bytes_alloc * n).sum()
    }

    fn json(&self, divisor: u64) -> String {
        let kinds: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, n)| {
                format!(
                    r#"{{"event":"{}","site":{},"cache":{},"bytes_req":{},"bytes_alloc":{},"count":{}}}"#,
                    k.event,
                    crate::irqsoff::json_str(&k.site),
                    crate::irqsoff::json_str(&k.cache),
                    k.bytes_req,
                    k.bytes_alloc,
                    n
                )
            })
            .collect();
        format!(
            r#"{{"bytes":{},"per":{},"events":{},"allocations":[{}]}}"#,
            self.bytes(),
            divisor,
            self.events,
            kinds.join(",")
        )
    }
}

/// A `call_site=` symbol without its offset, with its module if any.
fn site(text: &str) -> String {
    let Some(at) = text.find("call_site=") else {
        return String::new();
    };
    let rest = &text[at + "call_site=".len()..];
    let (sym, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    let sym = sym.split('+').next().unwrap_or(sym);
    match tail.strip_prefix('[').and_then(|t| t.split_once(']')) {
        Some((module, _)) => format!("{sym} [{module}]"),
        None => sym.to_string(),
    }
}

/// The allocations of task `pid` in `trace` not freed again within it.
fn live(trace: &str, pid: u32) -> Res<Live> {
    let task = format!("-{pid} ");
    let mut open: BTreeMap<String, Kind> = BTreeMap::new();
    let mut events = 0;
    for line in trace.lines().filter(|l| !l.starts_with('#')) {
        // "  task-PID  [CPU] flags  TIME: event: text"
        let Some((head, rest)) = line.split_once(": ") else {
            continue;
        };
        let Some((event, text)) = rest.split_once(": ") else {
            continue;
        };
        let text = format!(" {text}");
        let mine = head.contains(&task);
        let key = |name| -> Res<String> {
            tracefs::field(&text, name)
                .map(str::to_string)
                .ok_or_else(|| format!("trace: no {name}= in {line:?}"))
        };
        match event {
            "kmalloc" | "kmem_cache_alloc" | "percpu_alloc_percpu" if mine => {
                let num = |name| -> Res<u64> {
                    key(name)?
                        .parse()
                        .map_err(|e| format!("trace: {name} in {line:?}: {e}"))
                };
                let kind = Kind {
                    event: event.to_string(),
                    site: site(&text),
                    cache: tracefs::field(&text, "name").unwrap_or("").to_string(),
                    bytes_req: num(if event == "percpu_alloc_percpu" {
                        "size"
                    } else {
                        "bytes_req"
                    })?,
                    bytes_alloc: num("bytes_alloc")?,
                };
                events += 1;
                open.insert(key("ptr")?, kind);
            }
            // A free by anyone (an RCU callback, a worker) ends an allocation
            // of the step.
            "kfree" | "kmem_cache_free" | "percpu_free_percpu"
                if open.remove(&key("ptr")?).is_some() =>
            {
                events += 1;
            }
            _ => {}
        }
    }
    let mut kinds = BTreeMap::new();
    for kind in open.into_values() {
        *kinds.entry(kind).or_insert(0) += 1;
    }
    Ok(Live { kinds, events })
}

/// What task `pid` left allocated while `f` ran, the events of `t` on.
fn step(t: &tracefs::Events<'_>, pid: u32, f: impl FnOnce() -> Res<()>) -> Res<Live> {
    t.write("trace", "")?;
    t.record(f)?;
    t.check_overrun()?;
    live(&t.read("trace")?, pid)
}

/// What a context (an open of `path`) and each of `n` irqfds in it leave
/// allocated: a JSON object with the totals, the per-unit divisor and every
/// kind of allocation with its count.
pub fn memory(path: &str, n: usize, dir: &Path) -> Res<String> {
    let efds = eventfds(n)?;
    let t = tracefs::Events::enable(dir, &EVENTS, BUFFER_KB, None)?;
    let pid = std::process::id();
    let mut b = None;
    let context = step(&t, pid, || {
        b = Some(ModuleBackend::open(path).map_err(err("open"))?);
        Ok(())
    })?;
    let b = b.ok_or("open: no context")?;
    let nr = b.nr_gsis().max(1) as usize;
    let irqfds = step(&t, pid, || {
        for (i, e) in efds.iter().enumerate() {
            let gsi = u32::try_from(i % nr).unwrap_or(0);
            b.assign(e.as_fd(), gsi).map_err(err("assign"))?;
        }
        Ok(())
    })?;
    drop(b);
    let n = u64::try_from(n).map_err(|_| "n too large")?;
    Ok(format!(
        r#""n":{n},"context":{},"irqfds":{},"bytes_per_irqfd":{:.3},"bytes_per_context":{}"#,
        context.json(1),
        irqfds.json(n),
        irqfds.bytes() as f64 / n.max(1) as f64,
        context.bytes()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "\
# tracer: nop
#
 rust_irqfd_benc-88      [001] .....   10.000100: kmalloc: call_site=irqfd_assign+0x5c/0x420 [c_irqfd] ptr=00000000aaaa bytes_req=200 bytes_alloc=256 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO node=-1 accounted=true
 rust_irqfd_benc-88      [001] .....   10.000200: kmalloc: call_site=irqfd_assign+0x5c/0x420 [c_irqfd] ptr=00000000bbbb bytes_req=200 bytes_alloc=256 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO node=-1 accounted=true
 rust_irqfd_benc-88      [001] .....   10.000300: kmem_cache_alloc: call_site=__kernfs_new_node+0x50/0x200 ptr=00000000cccc name=kernfs_node_cache bytes_req=128 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 accounted=false
 rust_irqfd_benc-88      [001] .....   10.000400: kfree: call_site=irqfd_assign+0x99/0x420 [c_irqfd] ptr=00000000bbbb
 rust_irqfd_benc-88      [001] .....   10.000450: kmem_cache_free: call_site=kernfs_put+0x1/0x2 ptr=00000000cccc name=kernfs_node_cache
    kworker/0:1-12      [000] .....   10.000500: kmalloc: call_site=foo+0x1/0x2 ptr=00000000dddd bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL node=-1 accounted=false
 rust_irqfd_benc-88      [001] .....   10.000600: percpu_alloc_percpu: call_site=alloc_workqueue+0x1/0x2 reserved=0 is_atomic=0 size=64 align=8 base_addr=0000000011 off=0 ptr=00000000eeee bytes_alloc=128 gfp_flags=GFP_KERNEL
";

    #[test]
    fn live_counts_what_the_task_kept() {
        let l = live(TRACE, 88).unwrap();
        // 256 (one kmalloc kept) + 128 (percpu); the freed ones and the
        // worker's allocation do not count.
        assert_eq!(l.bytes(), 256 + 128);
        assert_eq!(l.kinds.len(), 2);
        let k = l.kinds.keys().next().unwrap();
        assert_eq!(k.site, "irqfd_assign [c_irqfd]");
        assert_eq!(k.bytes_req, 200);
        assert_eq!(l.events, 6);
    }

    #[test]
    fn other_pids_count_nothing() {
        assert_eq!(live(TRACE, 12).unwrap().bytes(), 8);
        assert_eq!(live(TRACE, 7).unwrap().bytes(), 0);
    }
}
