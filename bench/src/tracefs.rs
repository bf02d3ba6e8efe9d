// SPDX-License-Identifier: GPL-2.0
//! A session with some of the kernel's trace events, for the measurements
//! that count from tracepoints (`memory`, `stages`).

use std::path::Path;

use crate::Res;

/// Some trace events under tracefs `dir`, on while this lives. Dropping it
/// turns them off, empties the buffer and puts back its size and clock.
pub struct Events<'a> {
    dir: &'a Path,
    events: &'static [&'static str],
    /// The clock that was selected before, if this session changed it.
    clock: Option<String>,
}

impl<'a> Events<'a> {
    /// Enables `events` (tracefs names, `kmem/kmalloc`) with a per-CPU buffer
    /// of `buffer_kb` KiB and, if given, `clock`; recording stays off.
    pub fn enable(
        dir: &'a Path,
        events: &'static [&'static str],
        buffer_kb: &str,
        clock: Option<&str>,
    ) -> Res<Self> {
        let mut t = Self {
            dir,
            events,
            clock: None,
        };
        t.write("tracing_on", "0")?;
        if let Some(clock) = clock {
            // The selected clock is in brackets.
            let was = t
                .read("trace_clock")?
                .split_whitespace()
                .find_map(|c| c.strip_prefix('[').and_then(|c| c.strip_suffix(']')))
                .unwrap_or("local")
                .to_string();
            t.write("trace_clock", clock)?;
            t.clock = Some(was);
        }
        t.write("buffer_size_kb", buffer_kb)?;
        for e in events {
            t.write(&format!("events/{e}/enable"), "1")?;
        }
        t.write("trace", "")?;
        Ok(t)
    }

    pub fn write(&self, file: &str, value: &str) -> Res<()> {
        let f = self.dir.join(file);
        std::fs::write(&f, value).map_err(|e| format!("{}: {e}", f.display()))
    }

    pub fn read(&self, file: &str) -> Res<String> {
        let f = self.dir.join(file);
        std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))
    }

    /// Records while `f` runs, and returns what it returned.
    pub fn record<R>(&self, f: impl FnOnce() -> Res<R>) -> Res<R> {
        self.write("tracing_on", "1")?;
        let r = f();
        self.write("tracing_on", "0")?;
        r
    }

    /// Fails if a CPU's buffer lost events: a count taken from the trace
    /// would then be short.
    pub fn check_overrun(&self) -> Res<()> {
        let cpus = std::fs::read_dir(self.dir.join("per_cpu"))
            .map_err(|e| format!("per_cpu: {e}"))?
            .count();
        for cpu in 0..cpus {
            let s = self.read(&format!("per_cpu/cpu{cpu}/stats"))?;
            let overrun = s
                .lines()
                .find_map(|l| l.strip_prefix("overrun:"))
                .map_or("0", str::trim);
            if overrun != "0" {
                return Err(format!(
                    "trace buffer of cpu{cpu} overran ({overrun} events lost)"
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Events<'_> {
    fn drop(&mut self) {
        let _ = self.write("tracing_on", "0");
        for e in self.events {
            let _ = self.write(&format!("events/{e}/enable"), "0");
        }
        let _ = self.write("trace", "");
        if let Some(clock) = &self.clock {
            let _ = self.write("trace_clock", clock);
        }
        // The kernel's default size.
        let _ = self.write("buffer_size_kb", "1408");
    }
}

/// The value of ` name=` in an event's text, up to the next space (the
/// leading space keeps `pid` from matching `next_pid`).
pub fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let at = text.find(&format!(" {name}="))? + name.len() + 2;
    let rest = text.get(at..)?;
    Some(rest.split(' ').next().unwrap_or(rest))
}
