// SPDX-License-Identifier: GPL-2.0
//! rust_irqfd_test: kselftest for the rust_irqfd ABI.
//!
//! Runs the same tests, with the same expectations, against each device
//! node (by default `/dev/rust_irqfd`, `/dev/c_irqfd` and `/dev/kvm`, whose
//! irqfd is the design the modules port: see `kvm`), and prints KTAP: one
//! nested subtest per device. A device whose node is absent is skipped.
//!
//! Exit code: 0 all passed (skips allowed), 1 a failure, 4 all skipped.
//!
//! Layout: `abi` (the uapi header mirrored), `sys` (syscall wrappers, all
//! the unsafe), `dev` (a context and its ioctls), `harness` (the test type
//! and shared assertions), `ktap` (output), and one file per test area
//! (`functional`, `routing`, `errors`, `races`, `fuzz`); a new area adds its
//! `TESTS` to [`all_tests`]. The race scenarios (`race_*`) run in the frame of
//! `stress` and are summed up at the end in the comparison table of
//! `report` (KTAP diagnostics, `--table`, `--json`).

mod abi;
mod batch;
mod dev;
mod errors;
mod failnth;
mod functional;
mod fuzz;
mod harness;
mod inputs;
mod ktap;
mod kvm;
mod lifecycle;
mod limits;
mod observe;
mod races;
mod report;
mod routing;
mod scale;
mod stress;
mod sys;
mod wakeups;

use std::cell::RefCell;
use std::io::{self, Write};
use std::panic;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness::{Env, Stop, Tag, TagClause, Test};
use ktap::{Ktap, Outcome, Totals, KSFT_FAIL};
use report::{Row, Verdict};
use stress::{Kmemleak, StressCfg};

/// The device nodes tested when no `--device` is given.
const DEFAULT_DEVICES: &[&str] = &["/dev/rust_irqfd", "/dev/c_irqfd", "/dev/kvm"];
/// Default bound for waits on asynchronous effects.
const DEFAULT_TIMEOUT_SECS: u64 = 5;

/// Every test, in run order.
fn all_tests() -> Vec<&'static Test> {
    functional::TESTS
        .iter()
        .chain(routing::TESTS)
        .chain(wakeups::TESTS)
        .chain(errors::TESTS)
        .chain(inputs::TESTS)
        .chain(batch::TESTS)
        .chain(failnth::TESTS)
        .chain(scale::TESTS)
        .chain(limits::TESTS)
        .chain(observe::TESTS)
        .chain(races::TESTS)
        .chain(fuzz::TESTS)
        .chain(lifecycle::TESTS)
        .collect()
}

const USAGE: &str = "\
usage: rust_irqfd_test [--device PATH]... [--tag TAGS]... [--filter SUBSTR]... [--skip SUBSTR]... [--only-races] [--list]
                       [--timeout SECS] [--stress-secs S] [--stress-ops N]
                       [--kmemleak WHEN] [--table PATH] [--json PATH]
                       [--fuzz-secs S] [--fuzz-seed SEED] [--fuzz-threads T] [--fuzz-ops N]

  --device PATH    test this device node (repeatable; default: /dev/rust_irqfd /dev/c_irqfd
                   /dev/kvm; KVM runs the tests that apply to it, see kvm.rs)
  --tag TAGS       run only the tests with these tags: TAGS is tag[+tag...], each tag
                   may be !tag (must not have it); repeatable: any clause matches.
                   Tags: inject race core heavy hooks module fuzz (--list shows each test's)
  --filter SUBSTR  run only the tests whose name contains SUBSTR (repeatable: any matches)
  --skip SUBSTR    leave out the tests whose name contains SUBSTR (repeatable)
  --only-races     run only the race stress scenarios (race_*; combines with --filter)
  --list           print the test names and their tags (after the selection) and exit
  --timeout SECS   bound of every wait on an asynchronous effect (default 5)
  --stress-secs S  time budget of each race scenario (default 2.0)
  --stress-ops N   op budget of each race scenario (default 1000000); the first spent ends it
  --kmemleak WHEN  when to scan for leaks with kmemleak, if available: device (once, after a
                   device's last test, as a leaf test kmemleak; the default), scenario (after
                   each race scenario as well: a leak is pinned on its scenario, at a scan of
                   seconds each under emulation) or off; --no-kmemleak is --kmemleak off
  --table PATH     write the race comparison table there (plain text)
  --json PATH      write the race results there (JSON list)
  --fuzz-secs S    time budget of the model-checked fuzzer (fuzz_model), per device (default 3)
  --fuzz-seed SEED its seed, 0x hex or decimal (default: from the clock; always printed)
  --fuzz-threads T its threads, each with its own context (default 3, at most 64)
  --fuzz-ops N     at most N random ops per thread (default: no limit), to replay a seed exactly";

/// Command line.
#[derive(Debug, PartialEq)]
struct Args {
    devices: Vec<PathBuf>,
    tags: Vec<TagClause>,
    filters: Vec<String>,
    skips: Vec<String>,
    only_races: bool,
    list: bool,
    timeout: Duration,
    stress: StressCfg,
    table: Option<PathBuf>,
    json: Option<PathBuf>,
    fuzz: fuzz::FuzzCfg,
}

fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args {
        devices: Vec::new(),
        tags: Vec::new(),
        filters: Vec::new(),
        skips: Vec::new(),
        only_races: false,
        list: false,
        timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        stress: StressCfg::default(),
        table: None,
        json: None,
        fuzz: fuzz::FuzzCfg::default(),
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--device" | "-d" => a.devices.push(PathBuf::from(value("--device")?)),
            "--tag" => a.tags.push(TagClause::parse(&value("--tag")?)?),
            "--filter" | "-f" => a.filters.push(value("--filter")?),
            "--skip" => a.skips.push(value("--skip")?),
            "--timeout" | "-t" => {
                let v = value("--timeout")?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| format!("--timeout: not a number: {v}"))?;
                if !(secs > 0.0 && secs <= 3600.0) {
                    return Err(format!("--timeout: out of range: {v}"));
                }
                a.timeout = Duration::from_secs_f64(secs);
            }
            "--stress-secs" => {
                let v = value("--stress-secs")?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| format!("--stress-secs: not a number: {v}"))?;
                if !(secs > 0.0 && secs <= 86_400.0) {
                    return Err(format!("--stress-secs: out of range: {v}"));
                }
                a.stress.secs = secs;
            }
            "--stress-ops" => {
                let v = value("--stress-ops")?;
                let ops: u64 = v
                    .replace('_', "")
                    .parse()
                    .map_err(|_| format!("--stress-ops: not a count: {v}"))?;
                if ops == 0 {
                    return Err("--stress-ops: must be at least 1".into());
                }
                a.stress.ops = ops;
            }
            "--fuzz-secs" => {
                let v = value("--fuzz-secs")?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| format!("--fuzz-secs: not a number: {v}"))?;
                if !(secs > 0.0 && secs <= 86_400.0) {
                    return Err(format!("--fuzz-secs: out of range: {v}"));
                }
                a.fuzz.secs = secs;
            }
            "--fuzz-seed" => {
                let v = value("--fuzz-seed")?;
                a.fuzz.seed = Some(
                    fuzz::parse_seed(&v).ok_or_else(|| format!("--fuzz-seed: not a seed: {v}"))?,
                );
            }
            "--fuzz-threads" => {
                let v = value("--fuzz-threads")?;
                match v.parse::<usize>() {
                    Ok(n) if (1..=fuzz::MAX_THREADS).contains(&n) => a.fuzz.threads = n,
                    _ => {
                        return Err(format!(
                            "--fuzz-threads: not 1..={}: {v}",
                            fuzz::MAX_THREADS
                        ))
                    }
                }
            }
            "--fuzz-ops" => {
                let v = value("--fuzz-ops")?;
                match v.replace('_', "").parse::<u64>() {
                    Ok(n) if n >= 1 => a.fuzz.ops = Some(n),
                    _ => return Err(format!("--fuzz-ops: not a count >= 1: {v}")),
                }
            }
            "--table" => a.table = Some(PathBuf::from(value("--table")?)),
            "--json" => a.json = Some(PathBuf::from(value("--json")?)),
            "--only-races" => a.only_races = true,
            "--no-kmemleak" => a.stress.kmemleak = Kmemleak::Off,
            "--kmemleak" => {
                let v = value("--kmemleak")?;
                a.stress.kmemleak = Kmemleak::parse(&v)
                    .ok_or_else(|| format!("--kmemleak: not scenario, device or off: {v}"))?;
            }
            "--list" | "-l" => a.list = true,
            "--help" | "-h" => return Ok(None),
            _ => return Err(format!("unknown argument: {arg}")),
        }
    }
    if a.devices.is_empty() {
        a.devices = DEFAULT_DEVICES.iter().map(PathBuf::from).collect();
    }
    Ok(Some(a))
}

/// The tests `a` selects: by tag (any clause), then by name (any
/// `--filter`, no `--skip`), and only race scenarios with `--only-races`.
fn selected(a: &Args) -> Vec<&'static Test> {
    all_tests()
        .into_iter()
        .filter(|t| a.tags.is_empty() || a.tags.iter().any(|c| c.matches(t.tags)))
        .filter(|t| a.filters.is_empty() || a.filters.iter().any(|f| t.name.contains(f.as_str())))
        .filter(|t| !a.skips.iter().any(|f| t.name.contains(f.as_str())))
        .filter(|t| !a.only_races || t.tags.contains(&Tag::Race))
        .collect()
}

/// A `--list` line: the name, then its tags.
fn list_line(t: &Test) -> String {
    let tags: Vec<_> = Tag::ALL
        .into_iter()
        .filter(|g| t.tags.contains(g))
        .map(Tag::name)
        .collect();
    format!("{} {}", t.name, tags.join(","))
        .trim_end()
        .to_string()
}

/// KTAP name of a device: its node's file name.
fn device_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
        .replace(['#', ' '], "_")
}

thread_local! {
    /// Message and location of the last panic on this thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics are recorded, not printed: the runner reports them as `not ok`.
/// Panics of helper threads go to stderr as well, since nobody may ask.
fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let msg = format!("panic: {info}");
        if std::thread::current().name() != Some("main") {
            eprintln!("# {msg}");
        }
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(msg));
    }));
}

/// Runs one test, turning a panic into a failure (with the location the
/// panic hook recorded).
fn run_one(t: &Test, env: &Env) -> Outcome {
    if t.needs.gsis > env.nr_gsis() {
        return Outcome::Skip(format!(
            "needs {} gsis, the context has {}",
            t.needs.gsis,
            env.nr_gsis()
        ));
    }
    if t.needs.peer && env.present_peers().is_empty() {
        return Outcome::Skip("needs the other device node present".into());
    }
    LAST_PANIC.with(|p| p.borrow_mut().take());
    match harness::catch(|| (t.run)(env)) {
        Ok(()) => Outcome::Pass,
        Err(Stop::Skip(reason)) => Outcome::Skip(reason),
        Err(Stop::Fail(msg)) if msg.starts_with("panic: ") => {
            Outcome::Fail(LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or(msg))
        }
        Err(Stop::Fail(msg)) => Outcome::Fail(msg),
    }
}

/// Settings every test of the run gets.
#[derive(Clone, Copy, Debug)]
struct Opts {
    timeout: Duration,
    stress: StressCfg,
    fuzz: fuzz::FuzzCfg,
}

/// The table row of a race scenario that ran on a device.
fn race_row(
    scenario: &str,
    device: &str,
    deferred: bool,
    rep: &stress::Report,
    o: &Outcome,
    secs: f64,
) -> Row {
    let (verdict, message) = match o {
        Outcome::Pass => (Verdict::Pass, String::new()),
        Outcome::Fail(m) => (Verdict::Fail, m.clone()),
        Outcome::Skip(m) => (Verdict::Skip, m.clone()),
    };
    Row {
        scenario: scenario.to_string(),
        device: device.to_string(),
        deferred,
        ops: rep.tally.ops,
        deliveries: rep.tally.deliveries,
        errors: rep.tally.errors.clone(),
        verdict,
        message,
        secs,
    }
}

/// Runs the tests on one device as nested subtest `num`; the race
/// scenarios add their rows to `rows`.
fn run_device<W: Write>(
    k: &mut Ktap<W>,
    num: usize,
    path: &Path,
    peers: Vec<PathBuf>,
    tests: &[&Test],
    opts: &Opts,
    rows: &mut Vec<Row>,
) -> io::Result<Totals> {
    let name = device_name(path);
    let mut totals = Totals::default();
    if !path.exists() {
        let o = Outcome::Skip(format!(
            "{} not present (module not loaded?)",
            path.display()
        ));
        k.result(0, num, &name, &o)?;
        totals.add(&o);
        return Ok(totals);
    }

    // With --kmemleak device, a leaf after the tests: what they leaked.
    let leaf_kmemleak = opts.stress.kmemleak == Kmemleak::Device && !tests.is_empty();
    k.subtest(1, &name, tests.len() + usize::from(leaf_kmemleak))?;
    if leaf_kmemleak {
        for n in stress::kmemleak_device_begin() {
            k.diag(1, &n)?;
        }
    }
    let kind = dev::Kind::of(path);
    // Probe: GET_INFO of a fresh context gives nr_gsis and the mode; on
    // KVM, a VM with the in-kernel irqchip must come up.
    let probe = dev::Ctx::open(path)
        .map_err(|e| format!("open({}): {e}", path.display()))
        .and_then(|c| match kind {
            dev::Kind::Kvm => Ok(kvm::info()),
            dev::Kind::Module => c.info().map_err(|e| format!("RUST_IRQFD_GET_INFO: {e}")),
        })
        .and_then(|i| match i.nr_gsis {
            0 => Err("RUST_IRQFD_GET_INFO: nr_gsis 0".to_string()),
            _ => Ok(i),
        });
    if kind == dev::Kind::Kvm && probe.is_ok() {
        k.diag(1, &kvm::describe(path))?;
    } else if let Ok(info) = &probe {
        k.diag(
            1,
            &format!(
                "{}: version {} nr_gsis {} flags {:#x}{}",
                path.display(),
                info.version,
                info.nr_gsis,
                info.flags,
                if info.flags & abi::INFO_DEFERRED_ONLY != 0 {
                    " (deferred_only)"
                } else {
                    ""
                }
            ),
        )?;
    }

    let deferred = probe
        .as_ref()
        .is_ok_and(|i| i.flags & abi::INFO_DEFERRED_ONLY != 0);
    for (i, t) in tests.iter().enumerate() {
        let start = Instant::now();
        let off_kvm = match kind {
            dev::Kind::Kvm => kvm::why_not(t.name),
            dev::Kind::Module => None,
        };
        let o = match (&probe, off_kvm) {
            (Ok(_), Some(why)) => (Outcome::Skip(format!("KVM: {why}")), None),
            (Ok(info), None) => {
                let env = Env {
                    device: path.to_path_buf(),
                    peers: peers.clone(),
                    timeout: opts.timeout,
                    info: *info,
                    stress: opts.stress,
                    fuzz: opts.fuzz,
                    report: Mutex::new(None),
                };
                let o = run_one(t, &env);
                (o, env.take_report())
            }
            (Err(m), _) => (Outcome::Fail(format!("probe failed: {m}")), None),
        };
        let (o, report) = o;
        if t.tags.contains(&Tag::Race) {
            let rep = report.unwrap_or_default();
            for n in &rep.notes {
                k.diag(1, &format!("{}: {n}", t.name))?;
            }
            rows.push(race_row(
                t.name,
                &name,
                deferred,
                &rep,
                &o,
                start.elapsed().as_secs_f64(),
            ));
        }
        k.result(1, i + 1, t.name, &o)?;
        totals.add(&o);
    }
    if leaf_kmemleak {
        let o = match stress::kmemleak_device_end() {
            None => Outcome::Skip("kmemleak not available".into()),
            Some(Ok(())) => Outcome::Pass,
            Some(Err(m)) => Outcome::Fail(m),
        };
        k.result(1, tests.len() + 1, "kmemleak", &o)?;
        totals.add(&o);
    }

    let parent = if tests.is_empty() {
        let o = Outcome::Skip("no test matches the filter".into());
        totals.add(&o);
        o
    } else {
        totals.parent_outcome()
    };
    k.result(0, num, &name, &parent)?;
    Ok(totals)
}

/// Prints the race comparison table as KTAP diagnostics and writes it
/// (and the JSON) where asked.
fn race_summary<W: Write>(k: &mut Ktap<W>, args: &Args, rows: &[Row]) -> io::Result<()> {
    let table = report::table(rows);
    if !rows.is_empty() {
        k.diag(
            0,
            &format!(
                "race stress: budget {} s / {} ops per scenario",
                args.stress.secs, args.stress.ops
            ),
        )?;
        for l in &table {
            k.diag(0, l)?;
        }
    }
    let outputs = [
        (&args.table, table.join("\n") + "\n", "--table"),
        (&args.json, report::json(rows), "--json"),
    ];
    for (path, text, flag) in outputs {
        if let Some(p) = path {
            if let Err(e) = std::fs::write(p, text) {
                let m = format!("{flag} {}: {e}", p.display());
                eprintln!("rust_irqfd_test: {m}");
                k.diag(0, &m)?;
            }
        }
    }
    Ok(())
}

fn run(args: &Args) -> io::Result<i32> {
    let tests = selected(args);
    if args.list {
        let mut out = io::stdout().lock();
        for t in &tests {
            writeln!(out, "{}", list_line(t))?;
        }
        return Ok(0);
    }

    // Not locked for the whole run: a test's helper thread may print too.
    let mut k = Ktap::new(io::stdout());
    k.header(args.devices.len())?;
    let mut totals = Totals::default();
    let opts = Opts {
        timeout: args.timeout,
        stress: args.stress,
        // One seed for the run: both devices get the same op sequences.
        fuzz: args.fuzz.resolved(),
    };
    let mut rows = Vec::new();
    for (i, dev) in args.devices.iter().enumerate() {
        let peers = args.devices.iter().filter(|p| *p != dev).cloned().collect();
        totals.merge(run_device(
            &mut k,
            i + 1,
            dev,
            peers,
            &tests,
            &opts,
            &mut rows,
        )?);
    }
    race_summary(&mut k, args, &rows)?;
    k.totals(&totals)?;
    Ok(totals.exit_code())
}

fn main() {
    install_panic_hook();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            std::process::exit(0);
        }
        Err(m) => {
            eprintln!("rust_irqfd_test: {m}\n{USAGE}");
            std::process::exit(KSFT_FAIL);
        }
    };
    let code = run(&args).unwrap_or_else(|e| {
        eprintln!("rust_irqfd_test: writing the report: {e}");
        KSFT_FAIL
    });
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Result<Option<Args>, String> {
        parse_args(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn args_default_devices() {
        let a = parse(&[]).unwrap().unwrap();
        assert_eq!(
            a.devices,
            vec![
                PathBuf::from("/dev/rust_irqfd"),
                PathBuf::from("/dev/c_irqfd"),
                PathBuf::from("/dev/kvm")
            ]
        );
        assert!(!a.list && a.filters.is_empty() && !a.only_races);
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert_eq!(
            a.stress,
            StressCfg {
                secs: 2.0,
                ops: 1_000_000,
                kmemleak: Kmemleak::Device,
            }
        );
        assert_eq!((a.table, a.json), (None, None));
        assert_eq!(
            a.fuzz,
            fuzz::FuzzCfg {
                secs: 3.0,
                seed: None,
                threads: 3,
                ops: None,
            }
        );
    }

    #[test]
    fn args_fuzz() {
        let a = parse(&[
            "--fuzz-secs",
            "10",
            "--fuzz-seed=0xDEADbeef",
            "--fuzz-threads",
            "8",
            "--fuzz-ops=1_000",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            a.fuzz,
            fuzz::FuzzCfg {
                secs: 10.0,
                seed: Some(0xdead_beef),
                threads: 8,
                ops: Some(1000),
            }
        );
        assert_eq!(
            parse(&["--fuzz-seed", "12345"]).unwrap().unwrap().fuzz.seed,
            Some(12345)
        );
        for bad in [
            &["--fuzz-secs", "0"][..],
            &["--fuzz-secs", "x"],
            &["--fuzz-seed", "0xzz"],
            &["--fuzz-seed", "-1"],
            &["--fuzz-threads", "0"],
            &["--fuzz-threads", "65"],
            &["--fuzz-ops", "0"],
            &["--fuzz-seed"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn args_stress() {
        let a = parse(&[
            "--stress-secs",
            "0.5",
            "--stress-ops=1_000",
            "--table",
            "/tmp/t.txt",
            "--json=/tmp/t.json",
            "--only-races",
            "--no-kmemleak",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            a.stress,
            StressCfg {
                secs: 0.5,
                ops: 1000,
                kmemleak: Kmemleak::Off,
            }
        );
        assert_eq!(a.table, Some(PathBuf::from("/tmp/t.txt")));
        assert_eq!(a.json, Some(PathBuf::from("/tmp/t.json")));
        assert!(a.only_races);
        assert!(parse(&["--stress-secs", "0"]).is_err());
        assert!(parse(&["--stress-secs", "nan"]).is_err());
        assert!(parse(&["--stress-secs", "x"]).is_err());
        assert!(parse(&["--stress-ops", "0"]).is_err());
        assert!(parse(&["--stress-ops", "-3"]).is_err());
        assert!(parse(&["--table"]).is_err());
    }

    /// `--kmemleak WHEN` takes the three modes and nothing else; the last
    /// of it and `--no-kmemleak` wins.
    #[test]
    fn args_kmemleak() {
        for (v, want) in [
            ("scenario", Kmemleak::Scenario),
            ("device", Kmemleak::Device),
            ("off", Kmemleak::Off),
        ] {
            let a = parse(&["--kmemleak", v]).unwrap().unwrap();
            assert_eq!(a.stress.kmemleak, want, "{v}");
        }
        let a = parse(&["--kmemleak=device", "--no-kmemleak"])
            .unwrap()
            .unwrap();
        assert_eq!(a.stress.kmemleak, Kmemleak::Off);
        assert!(parse(&["--kmemleak", "always"]).is_err());
        assert!(parse(&["--kmemleak"]).is_err());
    }

    #[test]
    fn args_explicit() {
        let a = parse(&[
            "--device",
            "/dev/x",
            "--device=/dev/y",
            "--filter",
            "ebusy",
            "--list",
            "--timeout",
            "2.5",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            a.devices,
            vec![PathBuf::from("/dev/x"), PathBuf::from("/dev/y")]
        );
        assert_eq!(a.filters, vec!["ebusy".to_string()]);
        assert!(a.list);
        assert_eq!(a.timeout, Duration::from_millis(2500));
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--device"]).is_err());
        assert!(parse(&["--timeout", "0"]).is_err());
    }

    #[test]
    fn test_names_unique_and_ktap_safe() {
        let names: Vec<_> = all_tests().iter().map(|t| t.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate test name");
        for n in names {
            assert!(
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{n}"
            );
        }
    }

    /// The selection of `argv` (on top of the defaults).
    fn pick(argv: &[&str]) -> Vec<&'static str> {
        selected(&parse(argv).unwrap().unwrap())
            .iter()
            .map(|t| t.name)
            .collect()
    }

    #[test]
    fn filter_selects_by_substring() {
        assert_eq!(
            pick(&["--filter", "ebusy"]),
            vec![
                "ebusy_same_context",
                "ebusy_other_context",
                "ebusy_other_module"
            ]
        );
        assert!(pick(&["--filter", "no such test"]).is_empty());
        assert!(pick(&["--skip", "race_"])
            .iter()
            .all(|n| !n.starts_with("race_")));
        assert_eq!(pick(&[]).len(), all_tests().len());
    }

    #[test]
    fn race_selection() {
        let races = pick(&["--only-races"]);
        assert_eq!(races.len(), races::TESTS.len());
        assert!(races.iter().all(|n| n.starts_with("race_")));
        assert_eq!(pick(&["--tag", "race"]), races);
        assert_eq!(pick(&["--filter", "race_"]), races);
        assert_eq!(
            pick(&["--only-races", "--filter", "r1"]),
            vec![
                "race_r1_hup_vs_deassign",
                "race_r10_duplicate_assign",
                "race_r11_deassign_recycled_fd",
                "race_r12_teardown_vs_assign",
                "race_r13_mass_release",
                "race_r13b_fdinfo_vs_teardown",
                "race_r14_atomic_wakeup",
                "race_r15_hardirq_signal",
                "race_r16_lock_order",
                "race_r17_flush_interplay",
                "race_r18_module_unload",
                "race_r19_wakeup_resignal",
            ]
        );
        assert!(pick(&["--only-races", "--filter", "ebusy"]).is_empty());
    }

    #[test]
    fn tag_selection() {
        // Every race scenario is tagged race and named race_*, and nothing else is.
        for t in all_tests() {
            assert_eq!(
                t.tags.contains(&Tag::Race),
                t.name.starts_with("race_"),
                "{}",
                t.name
            );
            assert!(
                !t.tags.contains(&Tag::Core) || t.tags.contains(&Tag::Race),
                "{}",
                t.name
            );
        }
        assert_eq!(
            pick(&["--tag", "race+core"]),
            vec![
                "race_r1_hup_vs_deassign",
                "race_r3_inject_vs_shutdown",
                "race_r4_release_vs_hup",
                "race_r13_mass_release",
                "race_r13b_fdinfo_vs_teardown",
                "race_r19_wakeup_resignal",
                "race_r20_resampler",
                "race_r21_routing_update",
                "race_r21b_route_vs_deassign",
                "race_r21c_route_writers",
            ]
        );
        // The short run: no heavy test, and of the races only the core set.
        let short = pick(&["--tag", "!race+!heavy", "--tag", "core"]);
        assert!(
            short.contains(&"signal_delivers") && short.contains(&"race_r3_inject_vs_shutdown")
        );
        assert!(
            !short.contains(&"scoped_flush") && !short.contains(&"race_r2_hup_vs_running_shutdown")
        );
        // The wakeup oracles and the exact deferred counts run in both passes of
        // make mutants (and of make check).
        let deferred = pick(&["--tag", "inject+!race+!heavy", "--tag", "core"]);
        for name in [
            "blocking_read_wakes",
            "wake_on_unmask",
            "wake_on_level_assert",
            "wake_on_pending_at_assign",
            "wake_on_hardirq_signal",
            "coalescing",
            "mask_loop_nothing_lost",
        ] {
            assert!(short.contains(&name) && deferred.contains(&name), "{name}");
        }
        assert_eq!(pick(&["--tag", "fuzz"]), vec!["fuzz_model"]);
        assert!(parse(&["--tag", "nosuch"]).is_err());
        assert!(parse(&["--tag", "race+"]).is_err());
        assert_eq!(
            list_line(
                all_tests()
                    .iter()
                    .find(|t| t.name == "race_r3_inject_vs_shutdown")
                    .unwrap()
            ),
            "race_r3_inject_vs_shutdown inject,race,core"
        );
    }

    /// Both devices absent: each is one SKIP leaf, exit code 4.
    #[test]
    fn absent_devices_skip() {
        let mut k = Ktap::new(Vec::new());
        let tests = selected(&parse(&[]).unwrap().unwrap());
        let mut totals = Totals::default();
        let mut rows = Vec::new();
        let opts = Opts {
            timeout: Duration::from_secs(1),
            stress: StressCfg::default(),
            fuzz: fuzz::FuzzCfg::default(),
        };
        k.header(2).unwrap();
        for (i, d) in ["/nonexistent/rust_irqfd", "/nonexistent/c_irqfd"]
            .iter()
            .enumerate()
        {
            totals.merge(
                run_device(
                    &mut k,
                    i + 1,
                    Path::new(d),
                    vec![],
                    &tests,
                    &opts,
                    &mut rows,
                )
                .unwrap(),
            );
        }
        k.totals(&totals).unwrap();
        let out = String::from_utf8(k.into_inner()).unwrap();
        assert_eq!(
            out,
            "TAP version 13\n1..2\n\
             ok 1 rust_irqfd # SKIP /nonexistent/rust_irqfd not present (module not loaded?)\n\
             ok 2 c_irqfd # SKIP /nonexistent/c_irqfd not present (module not loaded?)\n\
             # Totals: pass:0 fail:0 xfail:0 xpass:0 skip:2 error:0\n"
        );
        assert_eq!(totals.exit_code(), ktap::KSFT_SKIP);
        assert!(rows.is_empty());
    }

    /// The race table goes out as diagnostics before the totals, and to
    /// the files asked for.
    #[test]
    fn race_summary_outputs() {
        let dir = std::env::temp_dir().join(format!("rust_irqfd_test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut a = parse(&[]).unwrap().unwrap();
        a.table = Some(dir.join("t.txt"));
        a.json = Some(dir.join("t.json"));
        let rep = stress::Report::default();
        let rows = vec![
            race_row("race_r1_x", "rust_irqfd", false, &rep, &Outcome::Pass, 1.5),
            race_row(
                "race_r1_x",
                "c_irqfd",
                true,
                &rep,
                &Outcome::Fail("I1 broken".into()),
                2.5,
            ),
        ];
        let mut k = Ktap::new(Vec::new());
        race_summary(&mut k, &a, &rows).unwrap();
        let out = String::from_utf8(k.into_inner()).unwrap();
        assert!(out.starts_with("# race stress: budget 2 s / 1000000 ops per scenario\n"));
        assert!(out.lines().all(|l| l.starts_with("# ")), "{out}");
        assert!(out.contains("| rust_irqfd "), "{out}");
        assert!(out.contains("| c_irqfd (deferred)"), "{out}");
        let t = std::fs::read_to_string(dir.join("t.txt")).unwrap();
        assert_eq!(t, report::table(&rows).join("\n") + "\n");
        let j = std::fs::read_to_string(dir.join("t.json")).unwrap();
        assert!(j.contains("\"message\": \"I1 broken\""), "{j}");
        std::fs::remove_dir_all(&dir).unwrap();

        // Nothing ran: no diagnostics, but the files are still written.
        let mut k = Ktap::new(Vec::new());
        a.table = None;
        a.json = Some(
            std::env::temp_dir().join(format!("rust_irqfd_test-{}-empty.json", std::process::id())),
        );
        race_summary(&mut k, &a, &[]).unwrap();
        assert!(k.into_inner().is_empty());
        let p = a.json.unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "[]\n");
        std::fs::remove_file(p).unwrap();
    }

    /// A caught panic becomes a failure with its message.
    #[test]
    fn panic_is_a_failure() {
        install_panic_hook();
        fn boom(_: &Env) -> harness::TestResult {
            panic!("kaboom");
        }
        let t = harness::test!(boom, harness::Needs::NONE);
        let env = Env {
            device: PathBuf::from("/nonexistent"),
            peers: vec![],
            timeout: Duration::from_secs(1),
            info: abi::RustIrqfdInfo {
                version: 1,
                nr_gsis: 8,
                ..Default::default()
            },
            stress: StressCfg::default(),
            fuzz: fuzz::FuzzCfg::default(),
            report: Mutex::new(None),
        };
        match run_one(&t, &env) {
            Outcome::Fail(m) => assert!(m.contains("kaboom"), "{m}"),
            o => panic!("expected a failure, got {o:?}"),
        }
        let t = Test {
            needs: harness::Needs::gsis(9),
            ..harness::test!(boom, harness::Needs::NONE)
        };
        assert!(matches!(run_one(&t, &env), Outcome::Skip(_)));
        let t = harness::test!(boom, harness::Needs::PEER);
        assert!(matches!(run_one(&t, &env), Outcome::Skip(_)));
        fn skipper(_: &Env) -> harness::Ran {
            harness::skip("not today")
        }
        let t = harness::test!(skipper, harness::Needs::NONE);
        assert_eq!(run_one(&t, &env), Outcome::Skip("not today".into()));
    }
}
