//! `spindle::signal::Signals`: signals raised with `kill(2)` reach `recv`,
//! which parks the fiber; what it does to the signal mask.
//!
//! This binary has its own `main` (`harness = false` in Cargo.toml): a
//! process-directed signal goes to any thread that does not block it, and
//! libtest's threads would not, so every case here runs on the main thread,
//! one after the other, with no other thread alive unless the case starts
//! it (after `Signals::new`, so it inherits the mask). Cases that must see
//! a signal's default action (the process dies) re-run this binary as a
//! child with `SIGNAL_CASE` set. `alarm(2)` is the watchdog: a lost wake-up
//! kills the run with `SIGALRM` instead of hanging it.
//!
//! Arguments: any that does not start with `-` filters the cases by
//! substring, as libtest does.
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::Cell;
use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::os::unix::process::ExitStatusExt;
use std::panic;
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle::signal::Signals;
use spindle::{JoinError, TaskId, TaskState};

const CASE_VAR: &str = "SIGNAL_CASE";

fn main() {
    if let Ok(case) = std::env::var(CASE_VAR) {
        child_case(&case);
        return;
    }
    // SAFETY: alarm has no memory-safety preconditions.
    unsafe { libc::alarm(300) };
    // libtest's arguments, as far as they matter here: plain words are name
    // filters, `--skip NAME` skips (CI's sanitizer runs pass those), other
    // flags are ignored.
    let mut filters: Vec<String> = Vec::new();
    let mut skips: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--skip" {
            skips.extend(args.next());
        } else if !a.starts_with('-') {
            filters.push(a);
        }
    }
    macro_rules! cases {
        ($($case:ident),* $(,)?) => { [$((stringify!($case), $case as fn())),*] };
    }
    let cases = cases![
        kill_reaches_a_parked_recv,
        recv_outside_a_fiber_blocks_the_thread,
        recv_timeout_and_try_recv,
        a_cancelled_recv_unwinds_and_loses_no_signal,
        the_iterator_yields_each_signal,
        the_mask_is_blocked_inherited_and_restored,
        dropping_discards_pending_signals,
        after_drop_the_default_action_applies_again,
        children_start_with_an_empty_mask,
        bad_signal_numbers_are_invalid_input,
        helper_threads_do_not_take_the_signals,
    ];
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, case) in cases {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if skips.iter().any(|s| s == name) {
            continue;
        }
        ran += 1;
        let mut ok = panic::catch_unwind(case).is_ok();
        // Each case leaves the mask as it found it.
        if blocked(libc::SIGUSR1) {
            eprintln!("{name} left SIGUSR1 blocked");
            ok = false;
        }
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}

/// Sends `sig` to this process (`kill(2)`, process-directed).
fn kill_self(sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

/// Whether the calling thread blocks `sig`.
fn blocked(sig: i32) -> bool {
    // SAFETY: plain data, filled in by pthread_sigmask.
    let mut cur: libc::sigset_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: a null `set` only reads the mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur) };
    // SAFETY: `cur` is initialised.
    unsafe { libc::sigismember(&cur, sig) == 1 }
}

fn state_of(id: TaskId) -> Option<TaskState> {
    spindle::tasks()
        .into_iter()
        .find(|t| t.id() == id)
        .map(|t| t.state())
}

fn wait_for_io_park(id: TaskId) {
    let start = Instant::now();
    while state_of(id) != Some(TaskState::WaitingIo) {
        assert!(start.elapsed() < Duration::from_secs(20), "never parked");
        spindle::sleep(Duration::from_millis(1));
    }
}

/// A fiber parked in `recv` gets a signal that another thread sends with
/// `kill(2)` to the whole process, while a second fiber keeps running.
fn kill_reaches_a_parked_recv() {
    spindle::run(|| {
        let signals = Rc::new(Signals::new([libc::SIGUSR1, libc::SIGUSR2]).unwrap());
        let s = Rc::clone(&signals);
        let receiver = spindle::spawn(move || s.recv().unwrap());
        wait_for_io_park(receiver.id());
        // Started after Signals::new: it inherits the mask, so the signal
        // can only go to the main thread's signalfd.
        let sender = std::thread::spawn(|| {
            assert!(
                blocked(libc::SIGUSR2),
                "a new thread did not inherit the mask"
            );
            kill_self(libc::SIGUSR2);
        });
        assert_eq!(receiver.join().unwrap(), libc::SIGUSR2);
        sender.join().unwrap();
        kill_self(libc::SIGUSR1);
        assert_eq!(signals.recv().unwrap(), libc::SIGUSR1);
    });
}

/// Outside a fiber, `recv` blocks the thread until the signal comes.
fn recv_outside_a_fiber_blocks_the_thread() {
    let signals = Signals::new([libc::SIGUSR1]).unwrap();
    let sender = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(50));
        kill_self(libc::SIGUSR1);
    });
    assert_eq!(signals.recv().unwrap(), libc::SIGUSR1);
    sender.join().unwrap();
}

/// `recv_timeout` gives `None` after about its timeout, then the signal
/// once one is pending; `try_recv` never waits.
fn recv_timeout_and_try_recv() {
    spindle::run(|| {
        let signals = Signals::new([libc::SIGUSR1]).unwrap();
        assert_eq!(signals.try_recv().unwrap(), None);
        let timeout = Duration::from_millis(100);
        let start = Instant::now();
        assert_eq!(signals.recv_timeout(timeout).unwrap(), None);
        let waited = start.elapsed();
        assert!(
            waited >= timeout && waited < timeout + Duration::from_secs(20),
            "{waited:?}"
        );
        kill_self(libc::SIGUSR1);
        assert_eq!(
            signals.recv_timeout(Duration::from_secs(20)).unwrap(),
            Some(libc::SIGUSR1)
        );
        kill_self(libc::SIGUSR1);
        assert_eq!(signals.try_recv().unwrap(), Some(libc::SIGUSR1));
        assert_eq!(signals.try_recv().unwrap(), None);
    });
}

struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A fiber cancelled while parked in `recv` unwinds; a signal sent after
/// that is received by the next `recv`.
fn a_cancelled_recv_unwinds_and_loses_no_signal() {
    spindle::run(|| {
        let signals = Rc::new(Signals::new([libc::SIGUSR1]).unwrap());
        let dropped = Rc::new(Cell::new(false));
        let h = spindle::spawn({
            let (s, d) = (Rc::clone(&signals), Rc::clone(&dropped));
            move || {
                let _g = SetOnDrop(d);
                s.recv()
            }
        });
        wait_for_io_park(h.id());
        h.cancel();
        assert!(matches!(h.join(), Err(JoinError::Cancelled)));
        assert!(dropped.get());
        kill_self(libc::SIGUSR1);
        assert_eq!(signals.recv().unwrap(), libc::SIGUSR1);
    });
}

/// The iterator yields the signals in the order they were sent (distinct
/// standard signals are delivered lowest number first when both pend, so
/// each is received before the next is sent).
fn the_iterator_yields_each_signal() {
    spindle::run(|| {
        let signals = Signals::new([libc::SIGUSR1, libc::SIGUSR2, libc::SIGHUP]).unwrap();
        let mut got = Vec::new();
        for sig in [libc::SIGHUP, libc::SIGUSR2, libc::SIGUSR1] {
            kill_self(sig);
            got.push(signals.iter().next().unwrap().unwrap());
        }
        assert_eq!(got, [libc::SIGHUP, libc::SIGUSR2, libc::SIGUSR1]);
    });
}

/// `new` blocks the signals in this thread (a thread started afterwards
/// inherits that); dropping the last holder unblocks them; a signal that
/// was blocked before stays blocked.
fn the_mask_is_blocked_inherited_and_restored() {
    assert!(!blocked(libc::SIGUSR1));
    let a = Signals::new([libc::SIGUSR1]).unwrap();
    assert!(blocked(libc::SIGUSR1));
    let b = Signals::new([libc::SIGUSR1, libc::SIGUSR2]).unwrap();
    std::thread::spawn(|| assert!(blocked(libc::SIGUSR1) && blocked(libc::SIGUSR2)))
        .join()
        .unwrap();
    drop(a);
    assert!(blocked(libc::SIGUSR1), "unblocked while `b` still holds it");
    drop(b);
    assert!(!blocked(libc::SIGUSR1) && !blocked(libc::SIGUSR2));

    // Blocked by the program before: left blocked.
    // SAFETY: plain data, initialised by sigemptyset.
    let mut set: libc::sigset_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: valid set; changes only this thread's mask.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    drop(Signals::new([libc::SIGUSR2]).unwrap());
    assert!(
        blocked(libc::SIGUSR2),
        "a signal blocked before was unblocked"
    );
    // SAFETY: as above.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
}

/// A signal pending when the `Signals` is dropped is discarded, not
/// delivered to its default action (which for `SIGUSR1` would end this
/// process).
fn dropping_discards_pending_signals() {
    let signals = Signals::new([libc::SIGUSR1]).unwrap();
    kill_self(libc::SIGUSR1);
    drop(signals);
    assert!(!blocked(libc::SIGUSR1));
}

/// After the drop, the signal's default action applies again: a child
/// process that drops its `Signals` and then gets `SIGUSR1` dies of it.
fn after_drop_the_default_action_applies_again() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CASE_VAR, "default_action")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGUSR1), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "received\n");
}

/// A child spawned by `spindle::process::Command` while a `Signals` blocks
/// signals starts with them unblocked, so `SIGTERM` still ends it; one
/// spawned by std's `Command` inherits the blocked mask (which is why
/// spindle's unblocks).
fn children_start_with_an_empty_mask() {
    fn child_mask(out: &std::process::Output) -> u64 {
        let line = String::from_utf8_lossy(&out.stdout);
        let mask = line.trim().rsplit('\t').next().unwrap();
        u64::from_str_radix(mask, 16).unwrap()
    }
    let usr1_term = 1 << (libc::SIGUSR1 - 1) | 1 << (libc::SIGTERM - 1);
    spindle::run(move || {
        let _signals = Signals::new([libc::SIGTERM, libc::SIGUSR1]).unwrap();
        let mut cmd = spindle::process::Command::new("grep");
        cmd.args(["^SigBlk", "/proc/self/status"]);
        for _ in 0..2 {
            assert_eq!(child_mask(&cmd.output().unwrap()), 0);
        }
        let out = std::process::Command::new("grep")
            .args(["^SigBlk", "/proc/self/status"])
            .output()
            .unwrap();
        assert_eq!(child_mask(&out) & usr1_term, usr1_term);
        let mut child = spindle::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    });
}

/// `SIGKILL`, `SIGSTOP`, 0, numbers past `SIGRTMAX`, and an empty set are
/// `InvalidInput`; nothing is blocked by a refused `new`.
fn bad_signal_numbers_are_invalid_input() {
    for bad in [
        vec![libc::SIGKILL],
        vec![libc::SIGUSR1, libc::SIGSTOP],
        vec![0],
        vec![65],
        vec![],
    ] {
        let e = Signals::new(bad.clone()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        assert!(!blocked(libc::SIGUSR1));
    }
    let s = Signals::new([libc::SIGUSR1, libc::SIGUSR1]).unwrap();
    assert_eq!(s.signals(), [libc::SIGUSR1]);
}

/// In a fresh process (no helper thread yet): a `spawn_blocking` thread
/// started after `Signals::new` inherits the blocked signals, and the
/// process reaper thread blocks every asynchronous signal but no fault
/// signal.
fn helper_threads_do_not_take_the_signals() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CASE_VAR, "helper_threads")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "helpers ok\n");
}

/// The `SigBlk` mask of this process's thread named `name`, once it
/// exists.
fn mask_of_thread(name: &str) -> u64 {
    let start = Instant::now();
    loop {
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = task.unwrap().path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
            let status = std::fs::read_to_string(dir.join("status")).unwrap();
            let line = status.lines().find(|l| l.starts_with("SigBlk:")).unwrap();
            return u64::from_str_radix(line.rsplit('\t').next().unwrap(), 16).unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no thread {name}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The bodies that run in a child process.
fn child_case(case: &str) {
    match case {
        "default_action" => spindle::run(|| {
            let signals = Signals::new([libc::SIGUSR1]).unwrap();
            kill_self(libc::SIGUSR1);
            assert_eq!(signals.recv().unwrap(), libc::SIGUSR1);
            println!("received");
            drop(signals);
            kill_self(libc::SIGUSR1); // dies here
            std::thread::sleep(Duration::from_secs(5));
            println!("still alive");
        }),
        "helper_threads" => spindle::run(|| {
            let _signals = Signals::new([libc::SIGUSR1]).unwrap();
            assert!(spindle::spawn_blocking(|| blocked(libc::SIGUSR1)));
            drop(
                spindle::process::Command::new("sleep")
                    .arg("1")
                    .spawn()
                    .unwrap(),
            );
            let mask = mask_of_thread("spindle-reaper");
            let bit = |s: i32| 1u64 << (s - 1);
            for s in [
                libc::SIGINT,
                libc::SIGTERM,
                libc::SIGUSR1,
                libc::SIGHUP,
                libc::SIGCHLD,
            ] {
                assert!(mask & bit(s) != 0, "reaper does not block {s}: {mask:#x}");
            }
            assert_eq!(mask & bit(libc::SIGSEGV), 0, "reaper blocks SIGSEGV");
            println!("helpers ok");
        }),
        other => panic!("unknown case {other}"),
    }
}
