//! Model-based tests: random programs of fiber operations (spawn, yield,
//! sleep, cancel, join, channel send/recv, mutex lock/unlock, semaphore
//! acquire/release, greenlet switch and drop) run on the real runtime, and
//! their log compared, event by event, with what a small model of the
//! documented round-robin order and of each primitive predicts
//! (`model.rs`). proptest generates the programs and shrinks a failing one
//! to a short program, printed with the environment variable that reruns
//! just that program.
//!
//! ## Time
//!
//! Sleeps are the one thing that depends on the clock. The model counts
//! time in whole units and advances it only when no fiber is ready; the
//! real run maps unit `t` to `t0 + t * unit` and sleeps until such
//! instants. The two agree as long as every event happens within the unit
//! the model says it does, i.e. the fibers ready at one time run before
//! the next unit begins. A run that falls behind (a loaded machine, qemu)
//! says so in its timestamps; a mismatch of such a run is not the
//! runtime's fault, so the program is run again with a unit twice as long
//! (up to [`MAX_UNIT`]). A mismatch of a run on time fails the test.
//!
//! ## One process per program
//!
//! Each program runs in a child process (this test binary again, with the
//! program in [`PROGRAM`]), so that a bug that crashes the process (two
//! stacks crossed, an abort) is a failing case proptest can shrink like any
//! other, and no program sees per-thread state another one left behind.
//!
//! ## Settings
//!
//! `PROPTEST_CASES` sets the number of programs (default [`DEFAULT_CASES`],
//! [`QEMU_CASES`] under qemu-user, where starting a child process takes
//! about 250 ms: 96 programs take 0.6 s on x86_64 and 24 about 8 s under
//! qemu, measured in release mode).

#[path = "../common/child.rs"]
mod child;
#[path = "../common/emulation.rs"]
mod emulation;
mod model;
mod ops;
mod real;

use std::fmt::Write as _;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use ops::{Event, Op, Program, ACTORS, CHANNELS, GREENLETS, MUTEXES, PERMITS};

/// Programs per run unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 96;
/// The same under qemu-user.
const QEMU_CASES: u32 = 24;

/// The first time unit tried.
const FIRST_UNIT: Duration = Duration::from_millis(1);
/// The longest: a run that falls behind even with it fails.
const MAX_UNIT: Duration = Duration::from_millis(256);

/// The channel whose `send` never waits.
const UNBOUNDED: usize = 0;
const _: () = assert!(ops::CAPACITY[UNBOUNDED].is_none());

fn op(actor: usize) -> BoxedStrategy<Op> {
    let other = 1..ACTORS;
    let common = prop_oneof![
        Just(Op::Yield),
        (1..=3u64).prop_map(Op::Sleep),
        other.clone().prop_map(Op::Cancel),
        (0..100u32).prop_map(|v| Op::Send(UNBOUNDED, v)),
        (0..MUTEXES).prop_map(Op::Unlock),
        Just(Op::Release),
    ];
    let spawn = other.clone().prop_map(Op::Spawn);
    let greenlet = prop_oneof![
        (0..GREENLETS, 0..100u32).prop_map(|(g, v)| Op::GSwitch(g, v)),
        (0..GREENLETS).prop_map(Op::GDrop),
    ];
    // The main fiber never waits for good (no recv, lock, acquire, join or
    // send on a bounded channel before
    // its epilogue), so every program ends; the others may wait forever,
    // and the main fiber's epilogue cancels them.
    let waits = prop_oneof![
        1 => other.prop_map(Op::Join),
        2 => (0..CHANNELS).prop_map(Op::Recv),
        2 => (0..CHANNELS, 0..100u32).prop_map(|(c, v)| Op::Send(c, v)),
        2 => (0..MUTEXES).prop_map(Op::Lock),
        2 => (1..=PERMITS).prop_map(Op::Acquire),
    ];
    // Weights chosen so that most programs have several fibers alive at
    // once, queued on the same lock or channel.
    // Every actor gets greenlet operations, so that greenlets of several
    // tasks are alive (and suspended across task switches) at once: the
    // test found the bug where a greenlet world did not follow its task.
    if actor == 0 {
        prop_oneof![5 => common, 3 => spawn, 1 => greenlet].boxed()
    } else {
        prop_oneof![5 => common, 1 => spawn, 4 => waits, 1 => greenlet].boxed()
    }
}

/// The main fiber's script: half the time it starts by spawning every
/// actor and ends with a long sleep, so that all of them contend for the
/// same channels and locks before its epilogue cancels them.
fn main_script() -> impl Strategy<Value = Vec<Op>> {
    (any::<bool>(), prop::collection::vec(op(0), 0..12)).prop_map(|(crowd, ops)| {
        if !crowd {
            return ops;
        }
        let mut script: Vec<Op> = (1..ACTORS).map(Op::Spawn).collect();
        script.extend(ops);
        script.push(Op::Sleep(3));
        script
    })
}

fn program() -> impl Strategy<Value = Program> {
    let others: Vec<_> = (1..ACTORS)
        .map(|a| prop::collection::vec(op(a), 0..12))
        .collect();
    (main_script(), others).prop_map(|(main, others)| {
        let mut program = vec![main];
        program.extend(others);
        program
    })
}

fn show(log: &[(Event, impl std::fmt::Debug)]) -> String {
    let mut s = String::new();
    for (i, (e, t)) in log.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {i:3}: actor {} op {} {:?} @ {t:?}",
            e.actor, e.pc, e.out
        );
    }
    s
}

/// Environment variable that hands a child its program ([`ops::encode`]).
const PROGRAM: &str = "SPINDLE_MODEL_PROGRAM";

/// Runs `program` for real and in the model in this process; `Err` if they
/// disagree on a run that kept time.
fn check(program: &Program) -> Result<(), TestCaseError> {
    let expected = model::Model::run(program);
    let mut unit = FIRST_UNIT;
    loop {
        let actual = real::run(program, unit).map_err(|p| {
            TestCaseError::fail(format!(
                "the runtime panicked: {p}\nexpected:\n{}",
                show(&expected)
            ))
        })?;
        let same =
            actual.len() == expected.len() && actual.iter().zip(&expected).all(|(a, e)| a.0 == e.0);
        if same {
            return Ok(());
        }
        // Late: an event logged after the unit the model puts it in ended.
        let late = actual
            .iter()
            .zip(&expected)
            .any(|((_, at), (_, t))| at.as_nanos() >= (u128::from(*t) + 1) * unit.as_nanos());
        if late && unit < MAX_UNIT {
            unit *= 2;
            continue;
        }
        return Err(TestCaseError::fail(format!(
            "the runtime and the model disagree (time unit {unit:?}{})\nexpected:\n{}actual:\n{}",
            if late {
                ", and the run fell behind"
            } else {
                ""
            },
            show(&expected),
            show(&actual)
        )));
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if emulation::under_qemu() {
            QEMU_CASES
        } else {
            DEFAULT_CASES
        })
}

/// Runs [`check`] on `program` in a child process.
fn check_in_child(program: &Program) -> Result<(), TestCaseError> {
    let out = child::run_child(PROGRAM, "runtime_follows_the_model", &ops::encode(program));
    if out.status.success() {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "rerun with {PROGRAM}='{}'\n{}",
            ops::encode(program),
            child::text(&out)
        )))
    }
}

#[test]
fn runtime_follows_the_model() {
    if let Ok(text) = std::env::var(PROGRAM) {
        if let Err(e) = check(&ops::decode(&text)) {
            panic!("{e}");
        }
        return;
    }
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&program(), |p| check_in_child(&p)) {
        panic!("{e}");
    }
}
