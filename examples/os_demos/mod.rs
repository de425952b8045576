//! The tour's last part: several worker threads (the multi-process answer
//! of the asyncio tutorial, as one process), then what a fiber reaches for
//! besides sockets and channels: child processes, signals, Unix domain
//! sockets and fiber-locals.
//!
//! Each demo starts its own runtime and writes its lines to a [`Log`] (the
//! one of `runtime_demos`), so the tests can check them. [`SECTIONS`] has
//! them in the tour's shape. Include this file with
//! `#[path = "../examples/os_demos/mod.rs"] mod os_demos;`, after
//! `runtime_demos`.
#![allow(dead_code)]

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use spindle::net::UnixStream;
use spindle::process::{Command, Stdio};
use spindle::signal::Signals;
use spindle::Runtime;

use super::runtime_demos::Log;

/// The asyncio tutorial's "coroutines on multicore": a pool of 4 jobs, each
/// running `per_job` tasks that sleep for `nap`. Python needs 4 processes;
/// here it is one process whose runtime has 2 worker threads. Each job is a
/// fiber placed with `spawn_balanced`; its sleepers are spawned locally, so
/// they run on the job's worker. Logs one line per job (its worker and its
/// time, in job order) and a summary; returns the wall time from the
/// runtime's build to the last job's end.
pub fn worker_pool(log: &Log, per_job: usize, nap: Duration) -> Duration {
    let start = Instant::now();
    let rt = Runtime::builder()
        .workers(2)
        .build()
        .expect("a runtime with two workers");
    let jobs = rt.block_on(|| {
        let jobs: Vec<_> = (0..4)
            .map(|_| {
                spindle::spawn_balanced(move || {
                    let began = Instant::now();
                    let sleepers: Vec<_> = (0..per_job)
                        .map(|_| spindle::spawn(move || spindle::sleep(nap)))
                        .collect();
                    for s in spindle::join_all(sleepers) {
                        s.expect("a sleeper finishes");
                    }
                    (spindle::current_worker(), began.elapsed())
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| j.join().expect("a job finishes"))
            .collect::<Vec<_>>()
    });
    for (i, (worker, took)) in jobs.iter().enumerate() {
        log.line(format!(
            "job {i}: {per_job} tasks on worker {worker}, {:.3} s",
            took.as_secs_f64()
        ));
    }
    let on_each = (0..2)
        .map(|w| jobs.iter().filter(|(worker, _)| *worker == w).count())
        .collect::<Vec<_>>();
    let took = start.elapsed();
    log.line(format!(
        "{} tasks, 2 workers ({} and {} jobs), {:.3} s in all",
        4 * per_job,
        on_each[0],
        on_each[1],
        took.as_secs_f64()
    ));
    took
}

/// Five children (`sh -c 'sleep 0.1; echo ...'`) run at once, each waited
/// for by its own fiber; then a fiber parked in `Signals::recv` receives a
/// SIGUSR1 that another fiber sends to this process with `kill(2)`.
pub fn processes_and_signals(log: &Log) {
    spindle::run(|| {
        let start = Instant::now();
        let children: Vec<_> = (1..=5)
            .map(|i| {
                spindle::spawn(move || {
                    let out = Command::new("sh")
                        .arg("-c")
                        .arg(format!("sleep 0.1; echo child {i} done"))
                        .stdout(Stdio::piped())
                        .output()
                        .expect("sh runs");
                    String::from_utf8_lossy(&out.stdout).trim().to_string()
                })
            })
            .collect();
        for child in spindle::join_all(children) {
            log.line(child.expect("the child's fiber finishes"));
        }
        let took = start.elapsed();
        log.line(format!(
            "5 children of 0.1 s each: {}",
            if took < Duration::from_millis(400) {
                "at once"
            } else {
                "one after another"
            }
        ));

        let signals = Signals::new([libc::SIGUSR1]).expect("signalfd for SIGUSR1");
        let sender = spindle::spawn(|| {
            spindle::sleep(Duration::from_millis(10));
            // SAFETY: sends a signal to this process; SIGUSR1 is blocked in
            // this thread and read through the signalfd.
            unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
        });
        let got = signals.recv().expect("the signal arrives");
        sender.join().expect("the sender finishes");
        log.line(format!(
            "received signal {} (SIGUSR1) in a parked fiber",
            if got == libc::SIGUSR1 { "USR1" } else { "?" }
        ));
    });
}

spindle::fiber_local! {
    /// How many lines this fiber has echoed.
    static ECHOED: Cell<u32> = Cell::new(0);
}

/// Two fibers over a Unix socket pair: one sends three lines, the other
/// echoes them; each counts its own work in the same fiber-local.
pub fn unix_and_fiber_locals(log: &Log) {
    spindle::run(|| -> io::Result<()> {
        let (mut a, mut b) = UnixStream::pair()?;
        let echo = spindle::spawn(move || -> io::Result<u32> {
            let mut buf = [0u8; 64];
            loop {
                let n = b.read(&mut buf)?;
                if n == 0 {
                    return Ok(ECHOED.get());
                }
                b.write_all(&buf[..n])?;
                ECHOED.set(ECHOED.get() + 1);
            }
        });
        for word in ["one", "two", "three"] {
            a.write_all(word.as_bytes())?;
            let mut buf = [0u8; 64];
            let n = a.read(&mut buf)?;
            log.line(format!("echoed {:?}", String::from_utf8_lossy(&buf[..n])));
        }
        drop(a);
        let echoed = echo.join().expect("the echo fiber finishes")?;
        log.line(format!(
            "fiber-local counts: echo fiber {echoed}, main fiber {}",
            ECHOED.get()
        ));
        Ok(())
    })
    .expect("the Unix socket demo runs");
}

/// A tour section: title, one line of what it shows, and the demo.
pub type Section = (&'static str, &'static str, fn() -> Vec<String>);

/// The demos as tour sections.
pub const SECTIONS: &[Section] = &[
    (
        "Many cores: the tutorial's pool of 4 jobs",
        "4 jobs of 2,500 one-second sleepers, as 4 processes in Python; here 2 worker threads.",
        || {
            lines(|log| {
                worker_pool(log, 2_500, Duration::from_secs(1));
            })
        },
    ),
    (
        "Processes and signals",
        "Five child processes waited for at once; a signal received by a parked fiber.",
        || lines(processes_and_signals),
    ),
    (
        "Unix sockets and fiber-locals",
        "An echo over a Unix socket pair; each fiber counts in its own fiber-local.",
        || lines(unix_and_fiber_locals),
    ),
];

fn lines(demo: impl FnOnce(&Log)) -> Vec<String> {
    let log = Log::quiet();
    demo(&log);
    log.lines()
}
