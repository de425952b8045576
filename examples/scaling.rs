//! CPU scaling: the same CPU-bound work as fibers on 1 and on 2 workers,
//! and as 1 and 2 plain OS threads, in one run.
//!
//! ```text
//! cargo run --release --example scaling                     # 64 fibers, 5 rounds
//! cargo run --release --example scaling -- --fibers 256 --rounds 7
//! ```
//!
//! The work: `--fibers` fibers (64 by default), each running a fixed
//! amount of pure computation (an xorshift loop of `--iters` steps, 4
//! million by default: a few milliseconds; no sleep, no I/O, no yield),
//! spawned with `spawn_balanced` from the main fiber, then all joined.
//! Timed from the runtime's build to the last join. The baseline does the
//! same total work on plain threads: one thread doing every piece, then two
//! threads doing half the pieces each (no runtime at all).
//!
//! Each round runs the four in turn (fibers on 1 worker, on 2 workers,
//! 1 thread, 2 threads) so that load from elsewhere on the machine hits
//! them alike; the medians are printed with the two speedups and their
//! ratio, and for the two-way runs the cores they kept busy on average (CPU
//! time of the process over wall time: 2.00 when both cores were theirs
//! throughout). On a machine whose cores are shared, the threads' speedup is
//! what the cores gave; spindle's speedup divided by it is the runtime's
//! share. With the main fiber counted on worker 0, `spawn_balanced` puts 31
//! pieces there and 33 on worker 1 (64 pieces), so 64 / 33 = 1.94x is the
//! best two workers can do on this work.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct it is given; plain data.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs `f`, and returns its result with the cores it kept busy on
/// average (CPU time over wall time).
fn with_cores<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let (cpu, wall) = (cpu_time(), Instant::now());
    let r = f();
    let cores = (cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64();
    (r, cores)
}

/// One piece of work: `iters` xorshift steps from `seed`.
fn work(seed: u64, iters: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = black_box(x);
    }
    x
}

/// `fibers` pieces as fibers on `workers` workers; returns the time and the
/// checksum (and how many ran on each worker).
fn on_fibers(workers: usize, fibers: u64, iters: u64) -> (Duration, u64, Vec<usize>) {
    let start = Instant::now();
    let rt = spindle::Runtime::builder()
        .workers(workers)
        .build()
        .expect("a runtime");
    let (sum, placed) = rt.block_on(move || {
        let hs: Vec<_> = (0..fibers)
            .map(|i| spindle::spawn_balanced(move || (work(i, iters), spindle::current_worker())))
            .collect();
        let mut sum = 0u64;
        let mut placed = vec![0; spindle::worker_count()];
        for h in hs {
            let (v, w) = h.join().expect("a piece of work finishes");
            sum = sum.wrapping_add(v);
            placed[w] += 1;
        }
        (sum, placed)
    });
    drop(rt);
    (start.elapsed(), sum, placed)
}

/// The same pieces on `threads` plain OS threads (piece `i` on thread
/// `i % threads`).
fn on_threads(threads: u64, fibers: u64, iters: u64) -> (Duration, u64) {
    let start = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                (0..fibers)
                    .filter(|i| i % threads == t)
                    .fold(0u64, |s, i| s.wrapping_add(work(i, iters)))
            })
        })
        .collect();
    let sum = hs.into_iter().fold(0u64, |s, h| {
        s.wrapping_add(h.join().expect("a thread finishes"))
    });
    (start.elapsed(), sum)
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<u64>().expect("a number"))
    };
    let fibers = value("--fibers").unwrap_or(64);
    let iters = value("--iters").unwrap_or(4_000_000);
    let rounds = value("--rounds").unwrap_or(5);
    println!("{fibers} pieces of {iters} xorshift steps, {rounds} rounds");

    let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let mut cores = [Vec::new(), Vec::new()];
    for r in 0..rounds {
        let ((f1, s1, _), _) = with_cores(|| on_fibers(1, fibers, iters));
        let ((f2, s2, placed), c2) = with_cores(|| on_fibers(2, fibers, iters));
        let ((h1, s3), _) = with_cores(|| on_threads(1, fibers, iters));
        let ((h2, s4), d2) = with_cores(|| on_threads(2, fibers, iters));
        assert!(
            s1 == s2 && s2 == s3 && s3 == s4,
            "the four ways computed different sums"
        );
        println!(
            "round {r}: fibers 1 worker {:.3} s, 2 workers {:.3} s (pieces per worker {placed:?}, \
             {c2:.2} cores busy); threads 1 {:.3} s, 2 {:.3} s ({d2:.2} cores busy)",
            f1.as_secs_f64(),
            f2.as_secs_f64(),
            h1.as_secs_f64(),
            h2.as_secs_f64()
        );
        for (v, d) in t.iter_mut().zip([f1, f2, h1, h2]) {
            v.push(d);
        }
        cores[0].push(Duration::from_secs_f64(c2));
        cores[1].push(Duration::from_secs_f64(d2));
    }
    let [f1, f2, h1, h2] = t.map(median);
    let [c2, d2] = cores.map(median);
    let fiber_speedup = f1 / f2;
    let thread_speedup = h1 / h2;
    let autogroup = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
        .is_ok_and(|v| v.trim() == "1");
    if autogroup && d2 < 1.5 {
        println!(
            "note: the two-thread run kept {d2:.2} cores busy, not 2: the CPUs are busy \
             elsewhere, and with autogroup scheduling on (sched_autogroup_enabled = 1) \
             this session gets a fixed share of them however many threads it runs"
        );
    }
    println!(
        "median: fibers 1 worker {f1:.3} s, 2 workers {f2:.3} s, speedup {fiber_speedup:.2}x \
         ({c2:.2} cores busy); threads 1 {h1:.3} s, 2 {h2:.3} s, speedup {thread_speedup:.2}x \
         ({d2:.2} cores busy); fibers' speedup / threads' {:.3}",
        fiber_speedup / thread_speedup
    );
}
