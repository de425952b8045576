//! Watching fibers run: per-fiber accounting and its sums against
//! `Runtime::stats` (1 and 2 workers), the counters of every worker, the
//! exact sequence of fiber events, and the blocked-scheduler watchdog.

mod common;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::child::{is_child, run_child, text};
use spindle::{BlockedFiber, BlockedPhase, FiberEventKind, Runtime, RuntimeStats, TaskState};

/// Busy-waits `d` on the CPU without giving the worker back.
#[inline(never)]
fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// One event as the tests record it.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    kind: FiberEventKind,
    name: Option<String>,
    worker: usize,
    resumes: u64,
    running: Duration,
    parked: Duration,
}

/// A runtime of `workers` that records every event, with accounting on
/// or off.
fn recording(workers: usize, accounting: bool) -> (Runtime, Arc<Mutex<Vec<Seen>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let rt = Runtime::builder()
        .workers(workers)
        .accounting(accounting)
        .on_fiber_event(move |e| {
            sink.lock().unwrap().push(Seen {
                kind: e.kind,
                name: e.name.map(str::to_string),
                worker: e.worker,
                resumes: e.resumes,
                running: e.running,
                parked: e.parked,
            })
        })
        .build()
        .expect("runtime");
    (rt, log)
}

fn kinds_of(log: &[Seen], name: &str) -> Vec<FiberEventKind> {
    log.iter()
        .filter(|s| s.name.as_deref() == Some(name))
        .map(|s| s.kind)
        .collect()
}

#[test]
fn the_events_of_a_fiber_come_in_exact_order() {
    use FiberEventKind::*;
    let (rt, log) = recording(1, false);
    rt.block_on(|| {
        let h = spindle::Builder::new()
            .name("w".into())
            .spawn(|| {
                spindle::yield_now();
                spindle::yield_now();
                spindle::sleep(Duration::from_millis(1));
            })
            .unwrap();
        h.join().unwrap();
    });
    let log = log.lock().unwrap();
    assert_eq!(
        kinds_of(&log, "w"),
        [
            Spawn,
            Resume,
            Suspend(TaskState::Ready),
            Resume,
            Suspend(TaskState::Ready),
            Resume,
            Suspend(TaskState::Sleeping),
            Resume,
            Exit
        ]
    );
    // The main fiber: spawned, ran, joined (parked), ran again, ended.
    assert_eq!(
        kinds_of(&log, "main"),
        [Spawn, Resume, Suspend(TaskState::WaitingJoin), Resume, Exit]
    );
    // Without accounting, the events carry no times.
    assert!(log.iter().all(|s| s.resumes == 0 && s.running.is_zero()));
}

#[test]
fn events_name_the_worker_and_a_cancelled_fiber_still_exits() {
    use FiberEventKind::*;
    let (rt, log) = recording(2, false);
    rt.block_on(|| {
        spindle::Builder::new()
            .name("far".into())
            .worker(1)
            .spawn(spindle::yield_now)
            .unwrap()
            .join()
            .unwrap();
        let h = spindle::Builder::new()
            .name("never".into())
            .spawn(|| unreachable!("cancelled before it ran"))
            .unwrap();
        h.cancel();
        assert!(h.join().is_err());
    });
    let log = log.lock().unwrap();
    let far: Vec<_> = log
        .iter()
        .filter(|s| s.name.as_deref() == Some("far"))
        .collect();
    assert!(far.iter().all(|s| s.worker == 1), "{far:?}");
    assert_eq!(
        kinds_of(&log, "far"),
        [Spawn, Resume, Suspend(TaskState::Ready), Resume, Exit]
    );
    // Its root sees the cancel at start and returns without calling it.
    assert_eq!(kinds_of(&log, "never"), [Spawn, Resume, Exit]);
}

#[test]
fn a_fiber_account_splits_running_from_parked() {
    let (rt, log) = recording(1, true);
    let lifetime = rt.block_on(|| {
        let start = Instant::now();
        spindle::Builder::new()
            .name("acct".into())
            .spawn(|| {
                spin(Duration::from_millis(20));
                spindle::sleep(Duration::from_millis(30));
            })
            .unwrap()
            .join()
            .unwrap();
        start.elapsed()
    });
    let log = log.lock().unwrap();
    let exit = log
        .iter()
        .find(|s| s.name.as_deref() == Some("acct") && s.kind == FiberEventKind::Exit)
        .expect("exit event");
    assert_eq!(exit.resumes, 2);
    assert!(exit.running >= Duration::from_millis(20), "{exit:?}");
    assert!(exit.parked >= Duration::from_millis(30), "{exit:?}");
    // Both fit in the fiber's life, as the main fiber saw it.
    assert!(
        exit.running + exit.parked <= lifetime,
        "{exit:?} {lifetime:?}"
    );
}

#[test]
fn time_between_two_block_ons_is_nobody_s_running_time() {
    let rt = Runtime::builder().accounting(true).build().unwrap();
    rt.block_on(spindle::yield_now);
    std::thread::sleep(Duration::from_millis(100));
    rt.block_on(spindle::yield_now);
    let stats = rt.stats();
    assert_eq!(stats.resumes, 4);
    assert!(stats.running < Duration::from_millis(50), "{stats:?}");
    assert!(stats.parked < Duration::from_millis(50), "{stats:?}");
}

#[test]
fn task_stats_lists_live_fibers_accounts() {
    let rt = Runtime::builder().accounting(true).build().unwrap();
    rt.block_on(|| {
        let hs: Vec<_> = (0..3)
            .map(|i| {
                spindle::Builder::new()
                    .name(format!("y{i}"))
                    .spawn(move || {
                        for _ in 0..=i {
                            spindle::yield_now();
                        }
                        spindle::sleep(Duration::from_secs(60)); // until cancelled
                    })
                    .unwrap()
            })
            .collect();
        for _ in 0..6 {
            spindle::yield_now(); // each lets every other fiber run once
        }
        let stats = spindle::task_stats();
        let names: Vec<_> = stats.iter().map(|s| s.name.as_deref().unwrap()).collect();
        assert_eq!(names, ["main", "y0", "y1", "y2"]);
        // y_i ran i + 2 times: its first resume, i + 1 yields, then slept.
        let resumes: Vec<_> = stats[1..].iter().map(|s| s.resumes).collect();
        assert_eq!(resumes, [2, 3, 4]);
        for h in hs {
            h.cancel();
            assert!(h.join().is_err());
        }
    });
}

/// Per fiber (summed over every exit) against the runtime's totals, and
/// per worker against `worker_stats`.
fn sums_match(workers: usize) {
    let (rt, log) = recording(workers, true);
    rt.block_on(|| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                spindle::Builder::new()
                    .worker(i % workers)
                    .spawn(move || {
                        for _ in 0..i {
                            spindle::yield_now();
                            spin(Duration::from_micros(200));
                        }
                        spindle::sleep(Duration::from_millis(2));
                    })
                    .unwrap()
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    let log = log.lock().unwrap();
    let exits: Vec<_> = log
        .iter()
        .filter(|s| s.kind == FiberEventKind::Exit)
        .collect();
    assert_eq!(exits.len(), 9);
    let sum = |w: Option<usize>| {
        exits
            .iter()
            .filter(|s| w.map_or(true, |w| s.worker == w))
            .fold((0, Duration::ZERO, Duration::ZERO), |(r, run, park), s| {
                (r + s.resumes, run + s.running, park + s.parked)
            })
    };
    let totals = |s: RuntimeStats| (s.resumes, s.running, s.parked);
    let stats = rt.stats();
    assert_eq!(sum(None), totals(stats));
    assert_eq!((stats.spawned, stats.finished), (9, 9));
    let each = rt.worker_stats();
    assert_eq!(each.len(), workers);
    for (w, s) in each.iter().enumerate() {
        assert_eq!(sum(Some(w)), totals(*s), "worker {w}");
    }
    assert!(
        stats.running >= Duration::from_micros(200 * 28),
        "{stats:?}"
    );
}

#[test]
fn accounting_sums_match_stats_on_one_worker() {
    sums_match(1);
}

#[test]
fn accounting_sums_match_stats_on_two_workers() {
    sums_match(2);
}

#[test]
fn stats_count_every_worker_without_accounting() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let hs: Vec<_> = (0..4)
            .map(|_| spindle::spawn_on(1, || (0..10).for_each(|_| spindle::yield_now())))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    let each = rt.worker_stats();
    // Worker 1 ran 4 fibers of 11 resumes each; worker 0 ran main.
    assert_eq!(
        (each[1].spawned, each[1].finished, each[1].resumes),
        (4, 4, 44)
    );
    assert_eq!((each[0].spawned, each[0].finished), (1, 1));
    let all = rt.stats();
    assert_eq!(all.resumes, each[0].resumes + 44);
    assert_eq!((all.spawned, all.finished), (5, 5));
    assert!(all.running.is_zero() && all.parked.is_zero());
}

// ---- the watchdog ----

/// The watchdog tests count the process's watchdog threads: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Threads of this process named `spindle-watchdog` (which the kernel
/// cuts to 15 bytes).
fn watchdog_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|t| {
            let comm = t.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|c| c.trim() == "spindle-watchdo")
        })
        .count()
}

fn watched(workers: usize, threshold: Duration) -> (Runtime, Arc<Mutex<Vec<BlockedFiber>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let rt = Runtime::builder()
        .workers(workers)
        .watchdog(threshold)
        .on_blocked(move |b| sink.lock().unwrap().push(b.clone()))
        .build()
        .unwrap();
    (rt, log)
}

/// Blocks its worker for `d`, then yields: the function the watchdog's
/// backtrace must name.
#[inline(never)]
fn hog_then_yield(d: Duration) {
    spin(d);
    spindle::yield_now();
    std::hint::black_box(());
}

#[test]
fn the_watchdog_reports_a_fiber_that_spins_and_not_one_that_yields() {
    let _serial = serial();
    for workers in [1, 2] {
        // A threshold well above what the OS may take a loaded worker off
        // its CPU for, so that only the hog is reported.
        let (rt, log) = watched(workers, Duration::from_millis(80));
        let start = Instant::now();
        rt.block_on(|| {
            let polite = spindle::Builder::new()
                .name("polite".into())
                .worker(workers - 1)
                .spawn(|| {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(300) {
                        spin(Duration::from_millis(2));
                        spindle::yield_now();
                    }
                })
                .unwrap();
            let hog = spindle::Builder::new()
                .name("hog".into())
                .worker(workers - 1)
                .spawn(|| hog_then_yield(Duration::from_millis(200)))
                .unwrap();
            hog.join().unwrap();
            polite.join().unwrap();
        });
        let log = log.lock().unwrap();
        let names: Vec<_> = log.iter().map(|b| b.name.as_deref()).collect();
        assert_eq!(names, [Some("hog"), Some("hog")], "{log:#?}");
        let (first, second) = (&log[0], &log[1]);
        assert_eq!(first.phase, BlockedPhase::Running);
        assert_eq!(first.worker, workers - 1);
        assert!(first.spawned_at.file().ends_with("observe.rs"), "{first}");
        assert!(first.blocked_for >= Duration::from_millis(80), "{first}");
        assert!(first.blocked_for < start.elapsed(), "{first}");
        assert_eq!(second.phase, BlockedPhase::Suspended);
        assert_eq!(second.id, first.id);
        assert!(second.blocked_for >= Duration::from_millis(200), "{second}");
        assert!(
            second
                .backtrace
                .iter()
                .any(|f| f.function().contains("hog_then_yield")),
            "{second}"
        );
        let text = second.to_string();
        assert!(text.contains("fiber") && text.contains("\"hog\""), "{text}");
    }
}

#[test]
fn the_watchdog_reports_a_fiber_that_ends_while_blocking() {
    let _serial = serial();
    let (rt, log) = watched(1, Duration::from_millis(80));
    rt.block_on(|| {
        spindle::Builder::new()
            .name("last".into())
            .spawn(|| spin(Duration::from_millis(200)))
            .unwrap()
            .join()
            .unwrap();
    });
    let log = log.lock().unwrap();
    let phases: Vec<_> = log.iter().map(|b| (b.name.as_deref(), b.phase)).collect();
    assert_eq!(
        phases,
        [
            (Some("last"), BlockedPhase::Running),
            (Some("last"), BlockedPhase::Finished)
        ]
    );
    assert!(log[1].backtrace.is_empty());
}

#[test]
fn the_watchdog_thread_ends_with_the_runtime() {
    let _serial = serial();
    let before = watchdog_threads();
    let (rt, _log) = watched(2, Duration::from_millis(10));
    rt.block_on(|| spindle::sleep(Duration::from_millis(5)));
    assert_eq!(watchdog_threads(), before + 1);
    drop(rt);
    // Joined by the drop; the kernel may list an exited thread in
    // /proc/self/task a moment longer (seen under qemu-user), so wait for
    // the listing, within a bound.
    let start = std::time::Instant::now();
    while watchdog_threads() != before {
        assert!(
            start.elapsed() < common::LONG,
            "the watchdog thread outlived its runtime"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_zero_threshold_is_an_error() {
    let e = Runtime::builder()
        .watchdog(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("watchdog"), "{e}");
}

const VAR: &str = "SPINDLE_OBSERVE_CHILD";

#[test]
fn without_a_callback_the_watchdog_writes_to_stderr() {
    if !is_child(VAR, "stderr") {
        let out = run_child(
            VAR,
            "without_a_callback_the_watchdog_writes_to_stderr",
            "stderr",
        );
        assert!(out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("spindle watchdog: fiber")
                && err.contains("\"stuck\" (worker 0, spawned at tests/observe.rs")
                && err.contains("has blocked its worker for")
                && err.contains("then suspended in:"),
            "{}",
            text(&out)
        );
        return;
    }
    let rt = Runtime::builder()
        .watchdog(Duration::from_millis(80))
        .build()
        .unwrap();
    rt.block_on(|| {
        spindle::Builder::new()
            .name("stuck".into())
            .spawn(|| hog_then_yield(Duration::from_millis(200)))
            .unwrap()
            .join()
            .unwrap();
    });
}
