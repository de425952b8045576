//! The runtime's part of the tour: false multitasking, the crawler,
//! asyncio's cancel example, asyncio's done callbacks, gevent's three workers, and the 10,000-task
//! sleep benchmark beside OS threads.
//!
//! Each demo starts its own runtime and writes its lines to a [`Log`], which
//! prints them as they come or only records them (the tests, which check
//! their order). [`SECTIONS`] has them in the shape of the tour in
//! `src/main.rs` (title, one line of explanation, `fn() -> Vec<String>`).
//! Include this file with
//! `#[path = "../examples/runtime_demos/mod.rs"] mod runtime_demos;`.
#![allow(dead_code)]

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle::{JoinError, Runtime};

mod dump;

/// Where a demo writes its lines.
#[derive(Clone, Default)]
pub struct Log {
    lines: Rc<RefCell<Vec<String>>>,
    echo: bool,
}

impl Log {
    /// A log that also prints each line to stdout as it comes.
    pub fn echo() -> Log {
        Log {
            lines: Rc::default(),
            echo: true,
        }
    }

    /// A log that only records.
    pub fn quiet() -> Log {
        Log::default()
    }

    /// Writes one line.
    pub fn line(&self, s: impl Into<String>) {
        let s = s.into();
        if self.echo {
            println!("{s}");
        }
        self.lines.borrow_mut().push(s);
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }
}

/// Two fibers take turns through `yield_now`: `---1---`, `---2---`, … —
/// concurrency without parallelism, on one thread.
pub fn false_multitasking(log: &Log, rounds: usize) {
    let log = log.clone();
    spindle::run(move || {
        let worker = |tag: &'static str| {
            let log = log.clone();
            spindle::spawn(move || {
                for _ in 0..rounds {
                    log.line(tag);
                    spindle::yield_now();
                }
            })
        };
        let one = worker("---1---");
        let two = worker("---2---");
        one.join().unwrap();
        two.join().unwrap();
    });
}

/// What [`crawler`] measured.
#[derive(Debug, Clone, Copy)]
pub struct CrawlTimes {
    /// Fetching the pages one after another.
    pub sequential: Duration,
    /// Fetching them in one fiber each.
    pub concurrent: Duration,
}

/// The pages and how many units each "download" takes.
pub const PAGES: [(&str, u32); 4] = [("page-a", 3), ("page-b", 1), ("page-c", 4), ("page-d", 2)];

/// Fetches four pages that take 1–4 units each (a sleep stands in for the
/// network): one after another (≈ 10 units), then in a fiber each
/// (≈ 4 units: the longest).
pub fn crawler(log: &Log, unit: Duration) -> CrawlTimes {
    let fetch = move |log: &Log, page: &'static str, units: u32| {
        spindle::sleep(unit * units);
        log.line(format!("  fetched {page} ({units} units)"));
        page.len() as u32 * units
    };
    let log = log.clone();
    spindle::run(move || {
        log.line("crawler, sequential:");
        let start = Instant::now();
        for (page, units) in PAGES {
            fetch(&log, page, units);
        }
        let sequential = start.elapsed();
        log.line(format!(
            "  took {:.1} units",
            sequential.as_secs_f64() / unit.as_secs_f64()
        ));

        log.line("crawler, concurrent (a fiber per page):");
        let start = Instant::now();
        let handles: Vec<_> = PAGES
            .into_iter()
            .map(|(page, units)| {
                let log = log.clone();
                spindle::spawn(move || fetch(&log, page, units))
            })
            .collect();
        for r in spindle::join_all(handles) {
            r.unwrap();
        }
        let concurrent = start.elapsed();
        log.line(format!(
            "  took {:.1} units",
            concurrent.as_secs_f64() / unit.as_secs_f64()
        ));
        CrawlTimes {
            sequential,
            concurrent,
        }
    })
}

/// asyncio's cancellation example: three workers, one returns a value, one
/// fails, one is cancelled while it sleeps; `join_all` (asyncio's
/// `gather(return_exceptions=True)`) reports all three.
///
/// While it runs, the panic hook prints one line for a panicking fiber
/// instead of the default message (and backtrace); the previous hook is put
/// back afterwards.
pub fn cancel_three_workers(log: &Log, unit: Duration) -> Vec<Result<u32, JoinError>> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let name = spindle::runtime::try_current().and_then(|t| t.name().map(String::from));
        eprintln!(
            "(fiber {:?} panicked: {})",
            name.unwrap_or_default(),
            payload_text(info.payload())
        );
    }));
    let results = cancel_three_workers_inner(log, unit);
    std::panic::set_hook(previous);
    results
}

fn payload_text(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string payload>")
}

fn cancel_three_workers_inner(log: &Log, unit: Duration) -> Vec<Result<u32, JoinError>> {
    let log = log.clone();
    spindle::run(move || {
        let l = log.clone();
        let value = spindle::Builder::new()
            .name("returns".into())
            .spawn(move || {
                spindle::sleep(unit);
                l.line("worker 'returns': done, returning 42");
                42
            })
            .unwrap();
        let l = log.clone();
        let fails = spindle::Builder::new()
            .name("fails".into())
            .spawn(move || -> u32 {
                spindle::sleep(unit);
                l.line("worker 'fails': raising an error");
                std::panic::panic_any("worker 'fails' gave up")
            })
            .unwrap();
        let l = log.clone();
        let cancelled = spindle::Builder::new()
            .name("cancelled".into())
            .spawn(move || {
                struct Cleanup(Log);
                impl Drop for Cleanup {
                    fn drop(&mut self) {
                        self.0.line("worker 'cancelled': cleaning up as it unwinds");
                    }
                }
                let _cleanup = Cleanup(l.clone());
                l.line("worker 'cancelled': sleeping for 10 units");
                spindle::sleep(unit * 10);
                l.line("worker 'cancelled': woke up (never printed)");
                7
            })
            .unwrap();
        spindle::sleep(unit * 2);
        log.line("main: cancelling worker 'cancelled'");
        cancelled.cancel();
        let results = spindle::join_all([value, fails, cancelled]);
        for (name, r) in ["returns", "fails", "cancelled"].iter().zip(&results) {
            match r {
                Ok(v) => log.line(format!("result of '{name}': Ok({v})")),
                Err(e) => log.line(format!("result of '{name}': Err({e})")),
            }
        }
        results
    })
}

/// asyncio's task callbacks: five named fibers, each with a done callback
/// that prints the finished task and its result; then two fibers gathered
/// with one callback for both.
pub fn done_callbacks(log: &Log, unit: Duration) {
    let log = log.clone();
    spindle::run(move || {
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let name = format!("task-{i}");
                let l = log.clone();
                let h = spindle::Builder::new()
                    .name(name.clone())
                    .spawn(move || {
                        l.line(format!("This is a task example, current task_id: {name}"));
                        spindle::sleep(unit);
                        format!("Task-id {name} Mission accomplished")
                    })
                    .unwrap();
                let l = log.clone();
                let (id, name) = (h.id(), h.name().unwrap_or_default().to_string());
                h.add_done_callback(move |r| {
                    let shown = match r {
                        Ok(v) => format!("result={v:?}"),
                        Err(e) => format!("error={e}"),
                    };
                    l.line(format!("<Task finished name='{name}' id={id} {shown}>"));
                    if let Ok(v) = r {
                        l.line(v.clone());
                    }
                });
                h
            })
            .collect();
        drop(spindle::join_all(handles));

        let suspend = |l: Log, units: u32| {
            spindle::spawn(move || {
                l.line(format!("suspend {units} units"));
                spindle::sleep(unit * units);
                format!("Suspended {units} units")
            })
        };
        let group = spindle::gather([suspend(log.clone(), 1), suspend(log.clone(), 3)]);
        let l = log.clone();
        group.add_done_callback(move |results| {
            let values: Vec<&str> = results
                .iter()
                .map(|r| r.as_ref().map_or("<failed>", String::as_str))
                .collect();
            l.line(format!("{values:?}"));
            l.line("Multiple Task Callback after task completion");
        });
        drop(group.join());
    });
}

/// gevent's three greenlets: two wait on a socket with a timeout (its
/// `select.select([], [], [], 2)`), while a third does other work; the
/// waits overlap, so all of it takes 2 units, not 5.
pub fn gevent_three_workers(log: &Log, unit: Duration) -> Duration {
    let log = log.clone();
    spindle::run(move || {
        let start = Instant::now();
        let at = move || format!("{:.1}", start.elapsed().as_secs_f64() / unit.as_secs_f64());
        let poller = |name: &'static str| {
            let log = log.clone();
            spindle::spawn(move || {
                let (quiet, _other_end) = UnixStream::pair().unwrap();
                log.line(format!("{name}: started polling at {}", at()));
                let r = spindle::runtime::wait_readable(
                    quiet.as_raw_fd(),
                    Some(Instant::now() + unit * 2),
                );
                assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
                log.line(format!("{name}: ended polling at {}", at()));
            })
        };
        let g1 = poller("gr1");
        let g2 = poller("gr2");
        let l = log.clone();
        let g3 = spindle::spawn(move || {
            l.line(format!(
                "gr3: doing some work while the others poll, at {}",
                at()
            ));
            spindle::sleep(unit);
            l.line(format!("gr3: done at {}", at()));
        });
        spindle::join_all([g1, g2, g3])
            .into_iter()
            .for_each(|r| r.unwrap());
        start.elapsed()
    })
}

/// What one run of the sleep benchmark measured.
#[derive(Debug, Clone, Copy)]
pub struct SleepReport {
    /// Tasks (fibers or threads).
    pub n: usize,
    /// From the first spawn to the last join.
    pub wall: Duration,
    /// Resident memory added while every task was asleep (VmRSS).
    pub rss_growth: u64,
    /// The process's peak resident memory so far (VmHWM).
    pub peak_rss: u64,
    /// Fiber resumes (each is one switch in and one back); 0 for threads.
    pub resumes: u64,
}

/// A field of `/proc/self/status`, in bytes.
pub fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `n` fibers each sleep `dur`; all joined.
pub fn fibers_sleep(n: usize, dur: Duration, stack_size: usize) -> SleepReport {
    let rt = Runtime::builder().stack_size(stack_size).build().unwrap();
    let before = proc_status_bytes("VmRSS");
    let start = Instant::now();
    let growth = rt.block_on(move || {
        let handles: Vec<_> = (0..n)
            .map(|_| spindle::spawn(move || spindle::sleep(dur)))
            .collect();
        // Sample while every fiber is asleep.
        let sampler = spindle::spawn(move || {
            spindle::sleep(dur / 2);
            proc_status_bytes("VmRSS").saturating_sub(before)
        });
        for r in spindle::join_all(handles) {
            r.unwrap();
        }
        sampler.join().unwrap()
    });
    let wall = start.elapsed();
    SleepReport {
        n,
        wall,
        rss_growth: growth,
        peak_rss: proc_status_bytes("VmHWM"),
        resumes: rt.stats().resumes,
    }
}

/// The same job with `n` OS threads.
pub fn threads_sleep(n: usize, dur: Duration) -> SleepReport {
    let before = proc_status_bytes("VmRSS");
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            std::thread::Builder::new()
                .spawn(move || std::thread::sleep(dur))
                .expect("spawning an OS thread")
        })
        .collect();
    let spawned = start.elapsed();
    std::thread::sleep((dur / 2).saturating_sub(spawned));
    let growth = proc_status_bytes("VmRSS").saturating_sub(before);
    for h in handles {
        h.join().unwrap();
    }
    SleepReport {
        n,
        wall: start.elapsed(),
        rss_growth: growth,
        peak_rss: proc_status_bytes("VmHWM"),
        resumes: 0,
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// The 10,000-task benchmark: `n` fibers each `sleep(dur)`, then the same
/// with `n` OS threads, side by side.
pub fn ten_thousand(log: &Log, n: usize, dur: Duration) -> (SleepReport, SleepReport) {
    log.line(format!("{n} tasks, each sleeping {dur:?}:"));
    let f = fibers_sleep(n, dur, spindle::Stack::DEFAULT_SIZE);
    log.line(format!(
        "  fibers:     wall {:.3} s, RSS +{:.1} MiB while asleep, {} resumes ({} switches)",
        f.wall.as_secs_f64(),
        mib(f.rss_growth),
        f.resumes,
        2 * f.resumes
    ));
    let t = threads_sleep(n, dur);
    log.line(format!(
        "  OS threads: wall {:.3} s, RSS +{:.1} MiB while asleep",
        t.wall.as_secs_f64(),
        mib(t.rss_growth)
    ));
    log.line(format!(
        "  fibers vs OS threads: {:.2}x the wall time, {:.2}x the memory while asleep",
        f.wall.as_secs_f64() / t.wall.as_secs_f64(),
        f.rss_growth as f64 / t.rss_growth.max(1) as f64
    ));
    log.line(format!(
        "  peak RSS of the process (VmHWM): {:.1} MiB",
        mib(t.peak_rss)
    ));
    (f, t)
}

/// A tour section: title, one line of what it shows, and the demo, which
/// returns the lines to print.
pub type Section = (&'static str, &'static str, fn() -> Vec<String>);

/// The demos as tour sections, but for the benchmark ([`BENCHMARK`]).
pub const SECTIONS: &[Section] = &[
    (
        "Fibers: false multitasking",
        "Two fibers print in turn, each yielding to the other: concurrency on one thread.",
        || lines(|log| false_multitasking(log, 3)),
    ),
    (
        "Fibers: the crawler",
        "Four pages of 1-4 units (1 unit = 100 ms): one after another, then a fiber each.",
        || {
            lines(|log| {
                let _ = crawler(log, Duration::from_millis(100));
            })
        },
    ),
    (
        "Fibers: cancellation",
        "asyncio's three workers: one returns, one panics, one is cancelled mid-sleep.",
        || lines(|log| drop(cancel_three_workers(log, Duration::from_millis(50)))),
    ),
    (
        "Fibers: done callbacks",
        "asyncio's add_done_callback: five tasks call back as they finish; then one callback for a gathered pair.",
        || lines(|log| done_callbacks(log, Duration::from_millis(20))),
    ),
    (
        "Fibers: gevent's three workers",
        "Two wait on a socket for 2 units while the third works for 1: it all takes 2.",
        || {
            lines(|log| {
                let _ = gevent_three_workers(log, Duration::from_millis(100));
            })
        },
    ),
];

/// The fiber dump as a tour section (its own list, so that other sections
/// can be appended to [`SECTIONS`] independently).
pub const DUMP: Section = (
    "Fibers: what is everyone doing?",
    "spindle::dump() lists every fiber, on every worker: its state, what it waits for, where it waits, where it was spawned, how much stack it used.",
    || lines(dump::what_is_everyone_doing),
);

/// The 10,000-task benchmark as a tour section: the tour ends with it.
pub const BENCHMARK: Section = (
    "Fibers: 10,000 tasks",
    "10,000 fibers each sleep 1 s, then the same with 10,000 OS threads.",
    || {
        lines(|log| {
            let _ = ten_thousand(log, 10_000, Duration::from_secs(1));
        })
    },
);

fn lines(demo: impl FnOnce(&Log)) -> Vec<String> {
    let log = Log::quiet();
    demo(&log);
    log.lines()
}

/// Every demo, with the tour's settings.
pub fn tour(log: &Log) {
    log.line("== false multitasking ==");
    false_multitasking(log, 3);
    log.line("== the crawler (1 unit = 100 ms) ==");
    crawler(log, Duration::from_millis(100));
    log.line("== asyncio's cancellation example (1 unit = 50 ms) ==");
    cancel_three_workers(log, Duration::from_millis(50));
    log.line("== gevent's three workers (1 unit = 100 ms) ==");
    gevent_three_workers(log, Duration::from_millis(100));
    log.line("== what is everyone doing? ==");
    dump::what_is_everyone_doing(log);
    log.line("== the 10,000-task benchmark ==");
    ten_thousand(log, 10_000, Duration::from_secs(1));
}
