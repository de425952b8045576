//! N tasks each sleep for a while; prints wall time, peak memory and
//! resumes. One implementation per process, so the peak (VmHWM) is its own.
//!
//! ```text
//! cargo run --release --example sleep_many -- 100000              # spindle fibers
//! cargo run --release --example sleep_many -- 10000 --threads     # OS threads
//! cargo run --release --example sleep_many -- 10000 --tokio       # baseline: tokio current-thread
//! cargo run --release --example sleep_many -- 10000 --tokio --workers 2  # tokio multi-thread, 2 workers
//! cargo run --release --example sleep_many -- 10000 --may         # baseline: may, one worker
//! cargo run --release --example sleep_many -- 100000 --workers 2  # spindle on 2 workers
//! options: --secs S (default 1), --stack BYTES (spindle's fiber stack size),
//!   --phases (with --workers: when each worker's sleepers fell asleep and
//!   woke, and what building and dropping the runtime took)
//! ```
//!
//! With `--workers N` the main fiber spawns every sleeper with
//! `spawn_balanced`, so they spread over the N workers (each a thread with
//! its own scheduler); without it, everything runs on one.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Returns (resumes, RSS growth while all sleep).
fn spindle_fibers(n: usize, dur: Duration, stack: usize) -> (u64, u64) {
    let rt = spindle::Runtime::builder()
        .stack_size(stack)
        .build()
        .expect("runtime");
    let before = status_bytes("VmRSS");
    let t0 = Instant::now();
    let phases = Rc::new(Cell::new([Duration::ZERO; 3]));
    let (ph, started) = (phases.clone(), Rc::new(Cell::new(0usize)));
    let growth = rt.block_on(move || {
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (fph, fstarted) = (ph.clone(), started.clone());
            let fiber = move || {
                fstarted.set(fstarted.get() + 1);
                if fstarted.get() == n {
                    let mut p = fph.get();
                    p[1] = t0.elapsed();
                    fph.set(p);
                }
                spindle::sleep(dur)
            };
            if i + 1 == n {
                let mut p = ph.get();
                p[0] = t0.elapsed();
                ph.set(p);
            }
            match spindle::Builder::new().spawn(fiber) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    eprintln!("fiber {i} could not be created: {e}");
                    std::process::exit(1);
                }
            }
        }
        let sampler = spindle::spawn(move || {
            spindle::sleep(dur / 2);
            status_bytes("VmRSS").saturating_sub(before)
        });
        for h in handles {
            h.join().expect("fiber");
        }
        let mut p = ph.get();
        p[2] = t0.elapsed();
        ph.set(p);
        sampler.join().unwrap()
    });
    let [spawned, asleep, joined] = phases.get();
    println!(
        "         phases: spawned all {:.3}s, all asleep {:.3}s, all joined {:.3}s, runtime done {:.3}s",
        spawned.as_secs_f64(),
        asleep.as_secs_f64(),
        joined.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    (rt.stats().resumes, growth)
}

/// With `--phases`: per worker, when its sleepers fell asleep (first and
/// last, since the sleepers' start) and when they woke (first and last), in
/// nanoseconds; `u64::MAX` / 0 until the first sample.
struct Phases {
    t0: Instant,
    /// Per worker: [first asleep, last asleep, first woke, last woke, the
    /// worker thread's CPU time at its last sleeper's falling asleep].
    workers: Vec<[AtomicU64; 5]>,
}

impl Phases {
    fn new(t0: Instant, workers: usize) -> Phases {
        let new = || [u64::MAX, 0, u64::MAX, 0, 0].map(AtomicU64::new);
        Phases {
            t0,
            workers: (0..workers).map(|_| new()).collect(),
        }
    }

    /// Records "now" as asleep (`at` = 0) or woke (`at` = 2).
    fn record(&self, at: usize) {
        let ns = self.t0.elapsed().as_nanos() as u64;
        let w = &self.workers[spindle::current_worker()];
        w[at].fetch_min(ns, Ordering::Relaxed);
        w[at + 1].fetch_max(ns, Ordering::Relaxed);
        if at == 0 {
            w[4].fetch_max(thread_cpu_ns(), Ordering::Relaxed);
        }
    }

    fn print(&self) {
        let ms = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e6;
        for (i, w) in self.workers.iter().enumerate() {
            println!(
                "         worker {i}: asleep {:.1}..{:.1} ms, woke {:.1}..{:.1} ms; CPU time till its last asleep {:.1} ms",
                ms(&w[0]),
                ms(&w[1]),
                ms(&w[2]),
                ms(&w[3]),
                ms(&w[4])
            );
        }
    }
}

/// The calling thread's CPU time, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The sleepers spread over `workers` workers with `spawn_balanced`.
/// Returns (worker 0's resumes, RSS growth while all sleep). With `phases`,
/// prints when each step ended (see [`Phases`]).
fn spindle_workers(
    n: usize,
    dur: Duration,
    stack: usize,
    workers: usize,
    phases: bool,
) -> (u64, u64) {
    let t_build = Instant::now();
    let rt = spindle::Runtime::builder()
        .stack_size(stack)
        .workers(workers)
        .build()
        .expect("runtime");
    let built = t_build.elapsed();
    let before = status_bytes("VmRSS");
    let t0 = Instant::now();
    let marks = Arc::new(Phases::new(t0, workers));
    let marks2 = Arc::clone(&marks);
    let growth = rt.block_on(move || {
        let handles: Vec<_> = (0..n)
            .map(|_| match phases {
                false => spindle::spawn_balanced(move || spindle::sleep(dur)),
                true => {
                    let m = Arc::clone(&marks2);
                    let f = move || {
                        m.record(0);
                        spindle::sleep(dur);
                        m.record(2);
                    };
                    spindle::spawn_balanced(f)
                }
            })
            .collect();
        let spawned = t0.elapsed();
        let sampler = spindle::spawn(move || {
            spindle::sleep(dur / 2);
            status_bytes("VmRSS").saturating_sub(before)
        });
        let mut per_worker = vec![0usize; spindle::worker_count()];
        for h in handles {
            per_worker[h.worker()] += 1;
            h.join().expect("fiber");
        }
        println!(
            "         phases: spawned all {:.3}s, all joined {:.3}s; fibers per worker {per_worker:?}",
            spawned.as_secs_f64(),
            t0.elapsed().as_secs_f64()
        );
        sampler.join().unwrap()
    });
    let returned = t0.elapsed();
    let resumes = rt.stats().resumes;
    drop(rt);
    if phases {
        marks.print();
        println!(
            "         build {:.1} ms; block_on returned {:.1} ms, runtime dropped {:.1} ms",
            built.as_secs_f64() * 1e3,
            returned.as_secs_f64() * 1e3,
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
    (resumes, growth)
}

fn os_threads(n: usize, dur: Duration) {
    let handles: Vec<_> = (0..n)
        .map(|_| std::thread::spawn(move || std::thread::sleep(dur)))
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Tokio's current-thread runtime, or its multi-thread one with `workers`
/// worker threads.
fn tokio_tasks(n: usize, dur: Duration, workers: Option<usize>) {
    let rt = match workers {
        Some(w) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(w)
            .enable_time()
            .build()
            .unwrap(),
        None => tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap(),
    };
    rt.block_on(async move {
        let handles: Vec<_> = (0..n)
            .map(|_| tokio::spawn(tokio::time::sleep(dur)))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
}

fn may_coroutines(n: usize, dur: Duration) {
    may::config().set_workers(1);
    let handles: Vec<_> = (0..n)
        // SAFETY: the closure uses no thread-local storage and does not
        // block the thread (may's own sleep parks the coroutine), which is
        // what may asks of a coroutine.
        .map(|_| unsafe { may::coroutine::spawn(move || may::coroutine::sleep(dur)) })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .iter()
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(10_000);
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let dur = Duration::from_secs_f64(value("--secs").unwrap_or(1.0));
    let stack = value("--stack").map_or(spindle::Stack::DEFAULT_SIZE, |v| v as usize);
    let workers = value("--workers").map(|v| v as usize);
    let which = ["--threads", "--tokio", "--may"]
        .into_iter()
        .find(|f| args.iter().any(|a| a == f))
        .unwrap_or("--spindle");

    let before = status_bytes("VmRSS");
    let start = Instant::now();
    let (resumes, growth) = match which {
        "--threads" => (os_threads(n, dur), (0, 0)).1,
        "--tokio" => (tokio_tasks(n, dur, workers), (0, 0)).1,
        "--may" => (may_coroutines(n, dur), (0, 0)).1,
        _ => match workers {
            Some(w) => spindle_workers(n, dur, stack, w, args.iter().any(|a| a == "--phases")),
            None => spindle_fibers(n, dur, stack),
        },
    };
    let wall = start.elapsed();
    let peak = status_bytes("VmHWM");
    println!(
        "{:<8} n={n:<8} sleep={dur:?} wall={:.3}s peak_rss={:.1}MiB ({} B/task over the start)",
        which.trim_start_matches("--"),
        wall.as_secs_f64(),
        mib(peak),
        peak.saturating_sub(before) / n.max(1) as u64,
    );
    if which == "--spindle" {
        if let Some(w) = workers {
            println!("         workers={w} (resumes below: worker 0's only)");
        }
        println!(
            "         resumes={resumes} (switches={}), RSS growth while all asleep={:.1}MiB ({} B/fiber)",
            2 * resumes,
            mib(growth),
            growth / n.max(1) as u64
        );
    }
}
