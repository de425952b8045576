//! The deadlock report across workers (`src/runtime/driver/idle.rs`).
//!
//! Its own main, not libtest's: the report fires only when the process
//! has no thread but the runtime's workers, and libtest keeps a thread of
//! its own. Each case runs in a child process (this program again, with
//! the case's name), so that a case that hangs instead of reporting is
//! killed after a deadline and fails loudly, and no watchdog thread sits
//! in the process being tested.

use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use spindle::sync::shared;
use spindle::{Builder, Runtime};

/// How long a child may take before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `f` as the main fiber of a 2-worker runtime; returns the deadlock
/// report it panicked with, or `None` if it returned.
fn report_of(f: impl FnOnce()) -> Option<String> {
    let rt = Runtime::builder().workers(2).build().expect("a runtime");
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(f)));
    drop(rt);
    match outcome {
        Ok(()) => None,
        Err(p) => Some(
            p.downcast_ref::<String>()
                .cloned()
                .expect("block_on panicked with a report"),
        ),
    }
}

fn expect_report(report: Option<String>, names: &[&str]) {
    let report = report.expect("a deadlock report, but block_on returned");
    assert!(
        report.starts_with("all fibers are asleep - deadlock!"),
        "not a deadlock report: {report}"
    );
    for name in names {
        assert!(
            report.contains(&format!("{name:?}")),
            "the report does not name {name}: {report}"
        );
    }
}

/// "ring-a" on worker 0 waits on `a_rx` holding `to_b`; "ring-b" on worker
/// 1 waits on `b_rx` holding `to_a`; the caller joins both.
fn ring(
    to_a: shared::Sender<()>,
    a_rx: shared::Receiver<()>,
    to_b: shared::Sender<()>,
    b_rx: shared::Receiver<()>,
) {
    let a = Builder::new()
        .name("ring-a".into())
        .worker(0)
        .spawn(move || {
            let _keep = to_b;
            a_rx.recv()
        })
        .unwrap();
    let b = Builder::new()
        .name("ring-b".into())
        .worker(1)
        .spawn(move || {
            let _keep = to_a;
            b_rx.recv()
        })
        .unwrap();
    let _ = a.join();
    let _ = b.join();
}

/// Two fibers on two workers, each waiting on its own shared channel
/// whose only sender the other holds: the report names both (and the
/// main fiber, which joins one of them).
fn circle_of_two_channels() {
    let report = report_of(|| {
        let (to_a, a_rx) = shared::channel::<()>();
        let (to_b, b_rx) = shared::channel::<()>();
        ring(to_a, a_rx, to_b, b_rx);
    });
    expect_report(report, &["main", "ring-a", "ring-b"]);
}

/// The main fiber joins a fiber of worker 1 that waits for ever on a
/// local channel it holds both ends of.
fn join_across_workers() {
    let report = report_of(|| {
        let h = Builder::new()
            .name("stuck".into())
            .worker(1)
            .spawn(|| {
                let (tx, rx) = spindle::sync::channel::<()>();
                let _keep = tx;
                let _ = rx.recv();
            })
            .unwrap();
        let _ = h.join();
    });
    expect_report(report, &["main", "stuck"]);
}

/// A fiber waiting for a plain thread's message is not reported, however
/// long the thread takes (every worker is idle meanwhile).
fn plain_thread_sender() {
    let report = report_of(|| {
        let (tx, rx) = shared::channel::<u32>();
        let h = spindle::spawn_on(1, move || rx.recv().unwrap());
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            tx.send(7).unwrap();
        });
        assert_eq!(h.join().unwrap(), 7);
        t.join().unwrap();
    });
    assert_eq!(report, None, "a wait a plain thread ends was reported");
}

/// A fiber asleep on worker 1 keeps the report away: the main fiber waits
/// for its message, which comes after the sleep.
fn sleeper_on_other_worker() {
    let report = report_of(|| {
        let (tx, rx) = shared::channel::<u32>();
        let h = spindle::spawn_on(1, move || {
            spindle::sleep(Duration::from_millis(300));
            tx.send(9).unwrap();
        });
        assert_eq!(rx.recv().unwrap(), 9);
        h.join().unwrap();
    });
    assert_eq!(report, None, "a wait a sleeping fiber ends was reported");
}

/// A circle that a plain thread could still break is not reported while
/// the thread lives (it holds a clone of a sender); once it has ended,
/// dropping its clone, the circle is reported.
fn circle_after_plain_thread_ends() {
    let start = Instant::now();
    let report = report_of(|| {
        let (to_a, a_rx) = shared::channel::<()>();
        let (to_b, b_rx) = shared::channel::<()>();
        let spare = to_a.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(spare);
        });
        ring(to_a, a_rx, to_b, b_rx);
        drop(t);
    });
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "reported while a plain thread still held a sender"
    );
    expect_report(report, &["ring-a", "ring-b"]);
}

/// The cases, and whether each expects a report.
const CASES: &[(&str, fn(), bool)] = &[
    ("circle_of_two_channels", circle_of_two_channels, true),
    ("join_across_workers", join_across_workers, true),
    ("plain_thread_sender", plain_thread_sender, false),
    ("sleeper_on_other_worker", sleeper_on_other_worker, false),
    (
        "circle_after_plain_thread_ends",
        circle_after_plain_thread_ends,
        true,
    ),
];

/// Whether this process sees itself alone: `num_threads` in
/// `/proc/self/stat` reads 1 (called before any thread is started). Under
/// qemu-user it reads 0 (qemu fills that file in itself, and the process
/// holds qemu's own threads besides); a tool that adds a thread of its own
/// would show here too. Then spindle cannot rule out another thread, so it
/// never makes a cross-worker report, and a case that expects a report
/// must hang instead (its child is killed after [`HANG`]): the documented
/// fallback.
fn alone() -> bool {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    rest.split_whitespace().nth(17) == Some("1")
}

/// How long a case that expects a report, where none can be made, must
/// keep waiting to pass.
const HANG: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--case") {
        let name = &args[i + 1];
        let (_, case, _) = CASES
            .iter()
            .find(|(n, _, _)| n == name)
            .expect("a known case");
        // The report panics are expected: keep stderr for real failures.
        panic::set_hook(Box::new(|info| {
            if !info.to_string().contains("all fibers are asleep") {
                eprintln!("{info}");
            }
        }));
        case();
        return ExitCode::SUCCESS;
    }
    // libtest's arguments, as far as they matter here: plain words are name
    // filters, `--skip NAME` skips (CI's sanitizer runs pass those), other
    // flags are ignored.
    let mut filters: Vec<&String> = Vec::new();
    let mut skips: Vec<&String> = Vec::new();
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        if a == "--skip" {
            skips.extend(rest.next());
        } else if !a.starts_with('-') {
            filters.push(a);
        }
    }
    let readable = alone();
    if !readable {
        println!(
            "this process does not see itself alone (qemu-user?): \
             the cases that expect a report must hang instead"
        );
    }
    let exe = std::env::current_exe().expect("the test program's path");
    let (mut ran, mut failed) = (0, 0);
    for &(name, _, reports) in CASES {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if skips.iter().any(|s| *s == name) {
            continue;
        }
        ran += 1;
        let must_hang = reports && !readable;
        let deadline = if must_hang { HANG } else { DEADLINE };
        let mut child = Command::new(&exe)
            .args(["--case", name])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the case's child starts");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("waiting for the child") {
                break Some(s);
            }
            if start.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        match (status, must_hang) {
            (Some(s), false) if s.success() => println!("test {name} ... ok"),
            (None, true) => println!("test {name} ... ok (no report, as it must be here)"),
            (Some(s), _) => {
                println!("test {name} ... FAILED ({s})");
                failed += 1;
            }
            (None, false) => {
                println!("test {name} ... FAILED (hung for {DEADLINE:?}, killed)");
                failed += 1;
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        ran - failed
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
