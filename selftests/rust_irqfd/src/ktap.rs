// SPDX-License-Identifier: GPL-2.0
//! KTAP output, as kselftest prints it (Documentation/dev-tools/ktap.rst).
//!
//! The writer streams: every line is flushed as soon as it is known, so that
//! a run that hangs or crashes the kernel still leaves the lines before it.

use std::io::{self, Write};

/// KSFT exit codes (tools/testing/selftests/kselftest.h).
pub const KSFT_PASS: i32 = 0;
/// At least one test failed.
pub const KSFT_FAIL: i32 = 1;
/// Every test was skipped.
pub const KSFT_SKIP: i32 = 4;

/// The result of one test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `ok N name`.
    Pass,
    /// `not ok N name`, after `# reason` lines.
    Fail(String),
    /// `ok N name # SKIP reason`.
    Skip(String),
}

/// Leaf-test counters for the `# Totals:` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
}

impl Totals {
    /// Counts one leaf outcome.
    pub fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail(_) => self.fail += 1,
            Outcome::Skip(_) => self.skip += 1,
        }
    }

    /// Folds another set of counters into this one.
    pub fn merge(&mut self, other: Totals) {
        self.pass += other.pass;
        self.fail += other.fail;
        self.skip += other.skip;
    }

    /// The outcome of a parent whose leaves are counted here: failed if any
    /// failed, skipped if none passed, passed otherwise.
    pub fn parent_outcome(&self) -> Outcome {
        if self.fail > 0 {
            Outcome::Fail(format!(
                "{} of {} tests failed",
                self.fail,
                self.pass + self.fail + self.skip
            ))
        } else if self.pass == 0 {
            Outcome::Skip("all tests skipped".to_string())
        } else {
            Outcome::Pass
        }
    }

    /// KSFT exit code: 1 on any failure, 4 if nothing passed, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.fail > 0 {
            KSFT_FAIL
        } else if self.pass == 0 {
            KSFT_SKIP
        } else {
            KSFT_PASS
        }
    }
}

/// Makes `s` fit on one KTAP line.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A KTAP writer; `level` is the nesting depth (4 spaces each).
pub struct Ktap<W: Write> {
    out: W,
}

impl<W: Write> Ktap<W> {
    /// Wraps an output stream.
    pub fn new(out: W) -> Self {
        Ktap { out }
    }

    /// Gives the stream back.
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }

    fn line(&mut self, level: usize, text: &str) -> io::Result<()> {
        writeln!(self.out, "{:width$}{text}", "", width = 4 * level)?;
        self.out.flush()
    }

    /// `TAP version 13` and the plan.
    pub fn header(&mut self, count: usize) -> io::Result<()> {
        self.line(0, "TAP version 13")?;
        self.line(0, &format!("1..{count}"))
    }

    /// `# text`, one line per line of `text`.
    pub fn diag(&mut self, level: usize, text: &str) -> io::Result<()> {
        for l in text.lines() {
            let l = l.trim_end();
            if l.is_empty() {
                continue;
            }
            self.line(level, &format!("# {l}"))?;
        }
        Ok(())
    }

    /// The start of a nested subtest at `level` (its own lines are at
    /// `level`, its result line at `level - 1`).
    pub fn subtest(&mut self, level: usize, name: &str, count: usize) -> io::Result<()> {
        self.line(level, &format!("# Subtest: {name}"))?;
        self.line(level, &format!("1..{count}"))
    }

    /// A result line, preceded by the failure reason as diagnostics.
    pub fn result(&mut self, level: usize, num: usize, name: &str, o: &Outcome) -> io::Result<()> {
        match o {
            Outcome::Pass => self.line(level, &format!("ok {num} {name}")),
            Outcome::Fail(reason) => {
                self.diag(level, reason)?;
                self.line(level, &format!("not ok {num} {name}"))
            }
            Outcome::Skip(reason) => self.line(
                level,
                &format!("ok {num} {name} # SKIP {}", one_line(reason)),
            ),
        }
    }

    /// The closing `# Totals:` line.
    pub fn totals(&mut self, t: &Totals) -> io::Result<()> {
        self.line(
            0,
            &format!(
                "# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:0",
                t.pass, t.fail, t.skip
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut Ktap<Vec<u8>>) -> io::Result<()>) -> String {
        let mut k = Ktap::new(Vec::new());
        f(&mut k).unwrap();
        String::from_utf8(k.into_inner()).unwrap()
    }

    #[test]
    fn nested_run() {
        let out = render(|k| {
            let mut total = Totals::default();
            k.header(2)?;

            let mut dev = Totals::default();
            k.subtest(1, "rust_irqfd", 3)?;
            for (i, (name, o)) in [
                ("open_close", Outcome::Pass),
                (
                    "get_info",
                    Outcome::Fail("expected version 1\ngot 2 (EINVAL)".into()),
                ),
                (
                    "ebusy_other_module",
                    Outcome::Skip("needs a second\ndevice".into()),
                ),
            ]
            .iter()
            .enumerate()
            {
                k.result(1, i + 1, name, o)?;
                dev.add(o);
            }
            k.result(0, 1, "rust_irqfd", &dev.parent_outcome())?;
            total.merge(dev);

            let absent = Outcome::Skip("/dev/c_irqfd: not present".into());
            k.result(0, 2, "c_irqfd", &absent)?;
            total.add(&absent);
            k.totals(&total)
        });
        let want = "\
TAP version 13
1..2
    # Subtest: rust_irqfd
    1..3
    ok 1 open_close
    # expected version 1
    # got 2 (EINVAL)
    not ok 2 get_info
    ok 3 ebusy_other_module # SKIP needs a second; device
# 1 of 3 tests failed
not ok 1 rust_irqfd
ok 2 c_irqfd # SKIP /dev/c_irqfd: not present
# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:2 error:0
";
        assert_eq!(out, want);
    }

    #[test]
    fn parent_outcomes_and_exit_codes() {
        let t = |pass, fail, skip| Totals { pass, fail, skip };
        assert_eq!(t(3, 0, 1).parent_outcome(), Outcome::Pass);
        assert!(matches!(t(3, 1, 0).parent_outcome(), Outcome::Fail(_)));
        assert!(matches!(t(0, 0, 2).parent_outcome(), Outcome::Skip(_)));
        assert!(matches!(t(0, 0, 0).parent_outcome(), Outcome::Skip(_)));
        assert_eq!(t(3, 0, 1).exit_code(), KSFT_PASS);
        assert_eq!(t(3, 1, 1).exit_code(), KSFT_FAIL);
        assert_eq!(t(0, 1, 0).exit_code(), KSFT_FAIL);
        assert_eq!(t(0, 0, 2).exit_code(), KSFT_SKIP);
        assert_eq!(t(0, 0, 0).exit_code(), KSFT_SKIP);
    }

    #[test]
    fn empty_diag_lines_are_dropped() {
        let out = render(|k| k.result(1, 4, "x", &Outcome::Fail("a\n\n  b  \n".into())));
        assert_eq!(out, "    # a\n    #   b\n    not ok 4 x\n");
    }
}
