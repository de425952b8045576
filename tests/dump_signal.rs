//! `RuntimeBuilder::dump_on`: on the signal, every worker's fibers go to
//! stderr and the program goes on; the old disposition comes back when the
//! runtime is dropped; signals it must refuse are refused. Each case runs
//! in a child process (signal dispositions are process-wide), whose stderr
//! is a file that the child itself reads to know that the dump was written.

mod common;

use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::child::is_child;

const VAR: &str = "SPINDLE_DUMP_SIGNAL_CHILD";
const STDERR_FILE: &str = "SPINDLE_DUMP_SIGNAL_STDERR";

/// Runs `name` as a child with its stderr in a new file; returns its exit
/// status, stdout and stderr.
fn child(name: &str) -> (std::process::ExitStatus, String, String) {
    let path = std::env::temp_dir().join(format!(
        "spindle-dump-signal-{}-{name}.stderr",
        std::process::id()
    ));
    let file = File::create(&path).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, name)
        .env(STDERR_FILE, &path)
        .stderr(Stdio::from(file))
        .output()
        .unwrap();
    let err = fs::read_to_string(&path).unwrap_or_default();
    let _ = fs::remove_file(&path);
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        err,
    )
}

/// In the child: waits until its own stderr holds `n` occurrences of
/// `what`.
fn until_stderr_has(what: &str, n: usize) {
    let path = std::env::var(STDERR_FILE).unwrap();
    let start = Instant::now();
    loop {
        let text = fs::read_to_string(&path).unwrap();
        if text.matches(what).count() >= n {
            return;
        }
        assert!(start.elapsed() < common::LONG, "no dump on stderr:\n{text}");
        spindle::sleep(Duration::from_millis(10));
    }
}

#[inline(never)]
fn nap_until_the_signal() {
    spindle::sleep(Duration::from_secs(60));
    std::hint::black_box(());
}

fn handler_of(signal: i32) -> libc::sighandler_t {
    // SAFETY: `sigaction` is plain data; the call only reads the
    // disposition into it.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

#[test]
fn sigquit_writes_every_workers_fibers_to_stderr_and_the_program_goes_on() {
    if is_child(
        VAR,
        "sigquit_writes_every_workers_fibers_to_stderr_and_the_program_goes_on",
    ) {
        // A shell without job control starts its background jobs with
        // SIGQUIT ignored, and the child inherits that: start from the
        // default disposition, which the runtime's drop must restore.
        // SAFETY: setting a signal's disposition to its default has no
        // memory-safety preconditions; no other thread of this child
        // process touches SIGQUIT.
        unsafe { libc::signal(libc::SIGQUIT, libc::SIG_DFL) };
        assert_eq!(handler_of(libc::SIGQUIT), libc::SIG_DFL);
        let rt = spindle::Runtime::builder()
            .workers(2)
            .dump_on(libc::SIGQUIT)
            .build()
            .unwrap();
        assert_ne!(handler_of(libc::SIGQUIT), libc::SIG_DFL);
        let woke = rt.block_on(|| {
            let napper = spindle::Builder::new()
                .name("sig-nap".into())
                .worker(1)
                .spawn(nap_until_the_signal)
                .unwrap();
            spindle::sleep(Duration::from_millis(20));
            for n in 1..=2 {
                // SAFETY: sending a signal has no memory-safety
                // preconditions.
                unsafe { libc::kill(libc::getpid(), libc::SIGQUIT) };
                until_stderr_has("\"sig-nap\" [sleeping, wakes in ", n);
            }
            // Still asleep, undisturbed: cancel it to end.
            napper.cancel();
            napper.join().is_err()
        });
        drop(rt);
        assert_eq!(
            handler_of(libc::SIGQUIT),
            libc::SIG_DFL,
            "disposition restored"
        );
        println!("went on after the dumps: {woke}");
        return;
    }
    let (status, out, err) =
        child("sigquit_writes_every_workers_fibers_to_stderr_and_the_program_goes_on");
    let all = format!("status {status:?}\n--- stdout\n{out}\n--- stderr\n{err}");
    assert!(status.success(), "{all}");
    assert!(out.contains("went on after the dumps: true"), "{all}");
    assert_eq!(
        err.matches("spindle: signal 3 (SIGQUIT): every fiber of the runtime")
            .count(),
        2,
        "{all}"
    );
    assert!(err.contains("worker 0: 1 fibers"), "{all}");
    assert!(err.contains("worker 1: 1 fibers"), "{all}");
    assert!(err.contains("\"main\" ["), "{all}");
    assert!(err.contains("dump_signal::nap_until_the_signal"), "{all}");
}

#[test]
fn dump_on_refuses_signals_it_must_not_take_and_a_second_holder() {
    if is_child(
        VAR,
        "dump_on_refuses_signals_it_must_not_take_and_a_second_holder",
    ) {
        for s in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, 65] {
            let e = spindle::Runtime::builder().dump_on(s).build().unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{s}: {e}");
            assert!(e.to_string().contains(&format!("dump_on({s})")), "{e}");
        }
        let first = spindle::Runtime::builder()
            .dump_on(libc::SIGUSR2)
            .build()
            .unwrap();
        let e = spindle::Runtime::builder()
            .dump_on(libc::SIGUSR2)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
        drop(first);
        // Free again once the first is gone.
        let again = spindle::Runtime::builder()
            .dump_on(libc::SIGUSR2)
            .build()
            .unwrap();
        drop(again);
        println!("all refused");
        return;
    }
    let (status, out, err) = child("dump_on_refuses_signals_it_must_not_take_and_a_second_holder");
    assert!(
        status.success() && out.contains("all refused"),
        "{status:?}\n{out}\n{err}"
    );
}
