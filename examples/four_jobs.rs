//! The asyncio tutorial's "coroutines on multicore" (seed 004): 10,000
//! one-second sleepers as 4 jobs of 2,500. Python runs the 4 jobs as 4 OS
//! processes; spindle runs them in one process with 2 worker threads (the
//! tour's "Many cores" demo, `os_demos::worker_pool`, reused here).
//!
//! ```text
//! cargo run --release --example four_jobs               # both ways, 5 rounds each
//! cargo run --release --example four_jobs -- --rounds 3
//! ```
//!
//! Each round runs, one after the other:
//!
//! - **one process, `workers(2)`**: `worker_pool(2_500, 1 s)`, from the
//!   runtime's build to the last job's end;
//! - **4 processes**: this program started 4 times at once as
//!   `four_jobs --job 2500`, each a one-worker runtime (`spindle::run`)
//!   with 2,500 sleepers; from the first `spawn` to the last exit, so the
//!   processes' start-up counts, as it does for the tutorial.
//!
//! It prints every round and the medians, and the peak resident memory
//! (VmHWM): the one process's, and the sum of the 4 processes' (each
//! child prints its own).
#![allow(dead_code)]

#[path = "runtime_demos/mod.rs"]
mod runtime_demos;

#[path = "os_demos/mod.rs"]
mod os_demos;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const JOBS: usize = 4;
const PER_JOB: usize = 2_500;
const NAP: Duration = Duration::from_secs(1);

/// One job as its own process: `per_job` sleepers on one worker; prints its
/// peak RSS in bytes.
fn job(per_job: usize) {
    spindle::run(|| {
        let sleepers: Vec<_> = (0..per_job)
            .map(|_| spindle::spawn(|| spindle::sleep(NAP)))
            .collect();
        for s in spindle::join_all(sleepers) {
            s.expect("a sleeper finishes");
        }
    });
    println!("peak {}", runtime_demos::proc_status_bytes("VmHWM"));
}

/// The 4 jobs as 4 processes: wall time and the sum of their peaks.
fn four_processes() -> (Duration, u64) {
    let exe = std::env::current_exe().expect("the path of this program");
    let start = Instant::now();
    let children: Vec<_> = (0..JOBS)
        .map(|_| {
            Command::new(&exe)
                .args(["--job", &PER_JOB.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .expect("a job process starts")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("a job process ends"))
        .collect();
    let took = start.elapsed();
    let peak = outputs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "a job process failed: {}", o.status);
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("peak ")?.parse::<u64>().ok())
                .expect("a job prints its peak")
        })
        .sum();
    (took, peak)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<usize>().expect("a number"))
    };
    if let Some(n) = value("--job") {
        job(n);
        return;
    }
    let rounds = value("--rounds").unwrap_or(5);
    println!(
        "seed 004: {JOBS} jobs x {PER_JOB} sleepers x {} s, {rounds} rounds",
        NAP.as_secs()
    );
    let (mut one, mut four) = (Vec::new(), Vec::new());
    let mut four_peak = 0;
    for r in 0..rounds {
        let t1 = os_demos::worker_pool(&runtime_demos::Log::quiet(), PER_JOB, NAP);
        let (t4, peak) = four_processes();
        four_peak = four_peak.max(peak);
        println!(
            "round {r}: one process, 2 workers {:.3} s; 4 processes {:.3} s",
            t1.as_secs_f64(),
            t4.as_secs_f64()
        );
        one.push(t1);
        four.push(t4);
    }
    let (m1, m4) = (median(one), median(four));
    println!(
        "median: one process, 2 workers {:.3} s (peak {:.1} MiB); \
         4 processes {:.3} s (peaks summed {:.1} MiB); ratio {:.3}",
        m1.as_secs_f64(),
        mib(runtime_demos::proc_status_bytes("VmHWM")),
        m4.as_secs_f64(),
        mib(four_peak),
        m1.as_secs_f64() / m4.as_secs_f64()
    );
}
