// SPDX-License-Identifier: GPL-2.0
//! What a test is, what it gets, and the assertion helpers tests share.
//!
//! A test is a plain `fn(&Env) -> TestResult` (or [`Ran`] where it may
//! skip); a failure is an `Err` with a message that says what was expected
//! and what was got (with errno names). Each test area adds a
//! `pub const TESTS: &[Test]`, listed in `main.rs`'s `all_tests`, and each
//! test declares with its [`Tag`]s what it exercises, so that a pass or a
//! make target selects tests by what they are (`--tag`), not by name.
//!
//! Here the test itself (its type, tags, needs and outcome); in `env` what
//! it gets ([`Env`]); in `assert` the assertions on results, errnos and
//! eventfds; in `stats` those on a GSI's counters; in `records` those on
//! what `read(2)` gives, and in `reader` a reader blocked in it (the
//! wakeup oracle); in `gsi` the steps tests take on a GSI (route,
//! mask, ACK, level line) and the GSI and routes they take them with.

mod assert;
mod env;
mod gsi;
mod reader;
mod records;
mod stats;

pub use assert::*;
pub use env::Env;
pub use gsi::*;
pub use reader::BlockedReader;
pub use records::*;
pub(crate) use stats::gsi_stats;
pub use stats::*;

use std::panic::{self, AssertUnwindSafe};

/// What a check returns: `Err(message)` is a failure.
pub type TestResult = Result<(), String>;

/// Why a test stopped without passing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A failure: what was expected and what was got.
    Fail(String),
    /// Not meaningful here (a missing kernel feature, a setting): the reason.
    Skip(String),
}

impl From<String> for Stop {
    fn from(msg: String) -> Self {
        Stop::Fail(msg)
    }
}

/// What a test returns when it may skip.
pub type Ran = Result<(), Stop>;

/// Skips the test at run time, for a reason found only then.
pub fn skip<T>(reason: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Skip(reason.into()))
}

/// Adds a failure to what a test gave: a pass becomes that failure, a
/// failure gains a line, and a skip with a failure added is a failure.
pub fn also(r: Ran, m: String) -> Ran {
    match r {
        Ok(()) => Err(Stop::Fail(m)),
        Err(Stop::Fail(prev)) => Err(Stop::Fail(format!("{prev}\n{m}"))),
        Err(Stop::Skip(why)) => Err(Stop::Fail(format!(
            "{m}\n(the test itself was skipped: {why})"
        ))),
    }
}

/// The message of a caught panic.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Runs `f`, turning a panic into a failure: the one place the suite
/// catches panics (the runner around each test, the race frame around its
/// body so that its cleanup still runs, and each racing thread so that the
/// others are stopped at once).
pub fn catch<E: From<String>>(f: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(E::from(format!("panic: {}", panic_message(&*p)))))
}

/// What a test exercises; passes and make targets select by these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// The injection path: rerun in the `deferred_only=1` pass.
    Inject,
    /// A race scenario of the catalogue: a row of the comparison table.
    Race,
    /// A race scenario of the short set (the lifecycle races R1, R3, R4,
    /// R13, R13b and the routing and resampling ones, R19-R21): `make
    /// mutants`.
    Core,
    /// Thousands of irqfds or a hundred module loads: left out of short
    /// runs.
    Heavy,
    /// Needs a `TEST_HOOKS=1` build (a hook parameter or irqfd_hardirq.ko)
    /// to exercise all it can; skips or narrows without one.
    Hooks,
    /// Loads and unloads the module under test.
    Module,
    /// The model-checked fuzzer.
    Fuzz,
}

impl Tag {
    /// Every tag, in the order `--list` prints them.
    pub const ALL: [Tag; 7] = [
        Tag::Inject,
        Tag::Race,
        Tag::Core,
        Tag::Heavy,
        Tag::Hooks,
        Tag::Module,
        Tag::Fuzz,
    ];

    /// The name used on the command line and by `--list`.
    pub const fn name(self) -> &'static str {
        match self {
            Tag::Inject => "inject",
            Tag::Race => "race",
            Tag::Core => "core",
            Tag::Heavy => "heavy",
            Tag::Hooks => "hooks",
            Tag::Module => "module",
            Tag::Fuzz => "fuzz",
        }
    }

    /// The tag called `name`.
    pub fn parse(name: &str) -> Option<Tag> {
        Tag::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One clause of a tag selection: every term must hold (`+`-joined tags,
/// `!tag` for a tag the test must not have).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagClause(Vec<(bool, Tag)>);

impl TagClause {
    /// Parses `inject`, `race+core`, `!heavy+!race`.
    pub fn parse(s: &str) -> Result<Self, String> {
        s.split('+')
            .map(|term| {
                let (want, name) = match term.strip_prefix('!') {
                    Some(n) => (false, n),
                    None => (true, term),
                };
                Tag::parse(name)
                    .map(|t| (want, t))
                    .ok_or_else(|| format!("unknown tag {name:?} in {s:?}"))
            })
            .collect::<Result<_, _>>()
            .map(TagClause)
    }

    /// Whether a test with `tags` satisfies every term.
    pub fn matches(&self, tags: &[Tag]) -> bool {
        self.0.iter().all(|(want, t)| tags.contains(t) == *want)
    }
}

/// Preconditions the runner checks before a test; unmet ones make it SKIP.
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    /// At least this many GSIs in a context.
    pub gsis: u32,
    /// Another device node (the other module) is present.
    pub peer: bool,
}

impl Needs {
    /// No precondition.
    pub const NONE: Needs = Needs {
        gsis: 0,
        peer: false,
    };

    /// At least `n` GSIs.
    pub const fn gsis(n: u32) -> Needs {
        Needs {
            gsis: n,
            peer: false,
        }
    }

    /// A second device present.
    pub const PEER: Needs = Needs {
        gsis: 0,
        peer: true,
    };
}

/// One test.
pub struct Test {
    /// KTAP name, identical for every device.
    pub name: &'static str,
    /// The body.
    pub run: fn(&Env) -> Ran,
    /// What it needs to be meaningful.
    pub needs: Needs,
    /// What it exercises.
    pub tags: &'static [Tag],
}

/// `test!(fn_name, needs)` or `test!(fn_name, needs, [Inject, ...])`:
/// a [`Test`] named after its function, so that the KTAP name and the code
/// always agree. The body returns [`TestResult`] or [`Ran`].
macro_rules! test {
    ($f:ident, $needs:expr) => {
        $crate::harness::test!($f, $needs, [])
    };
    ($f:ident, $needs:expr, [$($tag:ident),* $(,)?]) => {
        $crate::harness::Test {
            name: stringify!($f),
            run: |env| $f(env).map_err($crate::harness::Stop::from),
            needs: $needs,
            tags: &[$($crate::harness::Tag::$tag),*],
        }
    };
}
pub(crate) use test;
