// SPDX-License-Identifier: GPL-2.0
//! The comparison table of the race scenarios: one row per scenario, one
//! column group per device (ops, deliveries, verdict, errors by errno), as
//! plain text (printed as KTAP diagnostics and written to `--table`) and as
//! JSON (`--json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Verdict of one scenario on one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

impl Verdict {
    /// As printed: `pass`, `FAIL`, `skip`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        }
    }
}

/// One scenario on one device.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub scenario: String,
    /// KTAP name of the device (`rust_irqfd`).
    pub device: String,
    /// The module ran with `deferred_only`.
    pub deferred: bool,
    pub ops: u64,
    pub deliveries: u64,
    /// Expected errors met, by errno name.
    pub errors: BTreeMap<String, u64>,
    pub verdict: Verdict,
    /// Failure or skip reason; empty on a pass.
    pub message: String,
    /// Wall time of the scenario, leak scan included.
    pub secs: f64,
}

impl Row {
    /// The column label of its device: `rust_irqfd` or `rust_irqfd (deferred)`.
    pub fn column(&self) -> String {
        if self.deferred {
            format!("{} (deferred)", self.device)
        } else {
            self.device.clone()
        }
    }
}

/// `EBUSY=12,EBADF=3`: most frequent first; `-` when there is none.
pub fn errors_compact(errors: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = errors.iter().filter(|(_, &n)| n > 0).collect();
    if v.is_empty() {
        return "-".into();
    }
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Sub-column headers of a device's group.
const SUB: [&str; 4] = ["ops", "deliv", "verdict", "errors"];

/// The table, one string per line (no trailing blanks), in the order the
/// scenarios and devices first appear in `rows`. A scenario not run on a
/// device shows `-` there.
pub fn table(rows: &[Row]) -> Vec<String> {
    let mut scenarios: Vec<&str> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    for r in rows {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
        let c = r.column();
        if !columns.contains(&c) {
            columns.push(c);
        }
    }
    let cell = |s: &str, c: &str| -> [String; 4] {
        match rows.iter().find(|r| r.scenario == s && r.column() == c) {
            Some(r) => [
                r.ops.to_string(),
                r.deliveries.to_string(),
                r.verdict.label().to_string(),
                errors_compact(&r.errors),
            ],
            None => ["-", "-", "-", "-"].map(String::from),
        }
    };

    // Widths: per device, each sub-column fits its header and cells; the
    // last one is widened if the device label is longer than the group.
    let sw = scenarios
        .iter()
        .map(|s| s.len())
        .chain(std::iter::once("scenario".len()))
        .max()
        .unwrap_or(0);
    let mut widths: Vec<[usize; 4]> = Vec::new();
    for c in &columns {
        let mut w = SUB.map(str::len);
        for s in &scenarios {
            for (i, v) in cell(s, c).iter().enumerate() {
                w[i] = w[i].max(v.len());
            }
        }
        let inner = w.iter().sum::<usize>() + 2 * (w.len() - 1);
        if c.len() > inner {
            w[3] += c.len() - inner;
        }
        widths.push(w);
    }
    let group = |vals: &[String; 4], w: &[usize; 4]| -> String {
        vals.iter()
            .zip(w)
            .map(|(v, &w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };

    let mut lines = Vec::new();
    let mut head = format!("{:<sw$}", "scenario");
    let mut sub = format!("{:<sw$}", "");
    for (c, w) in columns.iter().zip(&widths) {
        let gw = w.iter().sum::<usize>() + 2 * (w.len() - 1);
        let _ = write!(head, " | {c:<gw$}");
        let _ = write!(sub, " | {}", group(&SUB.map(String::from), w));
    }
    let rule = "-".repeat(head.trim_end().len().max(sub.trim_end().len()));
    lines.push(head);
    lines.push(sub);
    lines.push(rule);
    for s in &scenarios {
        let mut l = format!("{s:<sw$}");
        for (c, w) in columns.iter().zip(&widths) {
            let _ = write!(l, " | {}", group(&cell(s, c), w));
        }
        lines.push(l);
    }
    lines
        .into_iter()
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The rows as a JSON list of objects, one per line.
pub fn json(rows: &[Row]) -> String {
    let mut o = String::from("[");
    for (i, r) in rows.iter().enumerate() {
        let errors = r
            .errors
            .iter()
            .map(|(k, v)| format!("{}: {v}", json_str(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let secs = if r.secs.is_finite() { r.secs } else { 0.0 };
        let _ = write!(
            o,
            "{}\n  {{\"scenario\": {}, \"device\": {}, \"deferred\": {}, \"ops\": {}, \
             \"deliveries\": {}, \"errors\": {{{errors}}}, \"verdict\": {}, \"message\": {}, \
             \"secs\": {secs:.3}}}",
            if i == 0 { "" } else { "," },
            json_str(&r.scenario),
            json_str(&r.device),
            r.deferred,
            r.ops,
            r.deliveries,
            json_str(r.verdict.label()),
            json_str(&r.message),
        );
    }
    o.push_str(if rows.is_empty() { "]\n" } else { "\n]\n" });
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(s: &str, dev: &str, deferred: bool, ops: u64, errs: &[(&str, u64)], v: Verdict) -> Row {
        Row {
            scenario: s.into(),
            device: dev.into(),
            deferred,
            ops,
            deliveries: ops / 2,
            errors: errs.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            verdict: v,
            message: if v == Verdict::Pass {
                String::new()
            } else {
                "why \"not\"\nsecond line".into()
            },
            secs: 2.0,
        }
    }

    #[test]
    fn errors_compact_order() {
        let mut e = BTreeMap::new();
        assert_eq!(errors_compact(&e), "-");
        e.insert("EBADF".to_string(), 3);
        e.insert("EBUSY".to_string(), 12);
        e.insert("EAGAIN".to_string(), 3);
        e.insert("EINVAL".to_string(), 0);
        assert_eq!(errors_compact(&e), "EBUSY=12,EAGAIN=3,EBADF=3");
    }

    #[test]
    fn table_layout() {
        let rows = vec![
            row(
                "race_r1_a",
                "rust_irqfd",
                false,
                1234,
                &[("EBADF", 3)],
                Verdict::Pass,
            ),
            row("race_r1_a", "c_irqfd", false, 99, &[], Verdict::Fail),
            row(
                "race_r15_long_name",
                "rust_irqfd",
                false,
                0,
                &[],
                Verdict::Skip,
            ),
        ];
        let t = table(&rows);
        let want = vec![
            "scenario           | rust_irqfd                    | c_irqfd",
            "                   | ops   deliv  verdict  errors  | ops  deliv  verdict  errors",
            "--------------------------------------------------------------------------------",
            "race_r1_a          | 1234  617    pass     EBADF=3 | 99   49     FAIL     -",
            "race_r15_long_name | 0     0      skip     -       | -    -      -        -",
        ];
        assert_eq!(t, want);
    }

    #[test]
    fn table_deferred_label_widens_group() {
        let rows = vec![row("race_x", "c_irqfd", true, 5, &[], Verdict::Pass)];
        let t = table(&rows);
        assert_eq!(t[0], "scenario | c_irqfd (deferred)");
        assert_eq!(t[1], "         | ops  deliv  verdict  errors");
        assert_eq!(t[3], "race_x   | 5    2      pass     -");
        assert!(t.iter().all(|l| l == l.trim_end()));
    }

    #[test]
    fn table_empty() {
        assert_eq!(table(&[]), vec!["scenario", "", "--------"]);
    }

    #[test]
    fn json_rows() {
        assert_eq!(json(&[]), "[]\n");
        let rows = vec![
            row(
                "race_r1_a",
                "rust_irqfd",
                true,
                10,
                &[("EBUSY", 2), ("EBADF", 1)],
                Verdict::Pass,
            ),
            row("race_r2_b", "c_irqfd", false, 3, &[], Verdict::Fail),
        ];
        let j = json(&rows);
        assert_eq!(
            j,
            "[\n  {\"scenario\": \"race_r1_a\", \"device\": \"rust_irqfd\", \"deferred\": true, \
             \"ops\": 10, \"deliveries\": 5, \"errors\": {\"EBADF\": 1, \"EBUSY\": 2}, \
             \"verdict\": \"pass\", \"message\": \"\", \"secs\": 2.000},\n  \
             {\"scenario\": \"race_r2_b\", \"device\": \"c_irqfd\", \"deferred\": false, \
             \"ops\": 3, \"deliveries\": 1, \"errors\": {}, \"verdict\": \"FAIL\", \
             \"message\": \"why \\\"not\\\"\\nsecond line\", \"secs\": 2.000}\n]\n"
        );
        assert_eq!(json_str("a\u{1}b\\"), "\"a\\u0001b\\\\\"");
    }
}
