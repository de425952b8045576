//! Skynet: 1,111,111 fibers. The root spawns 10 children, each of those
//! spawns 10, and so on six levels down; the 1,000,000 leaves return their
//! number and every fiber returns the sum of its children's results
//! (0 + 1 + ... + 999,999 = 499,999,500,000). Prints the wall time, the
//! time per fiber and the peak RSS (`getrusage`'s `ru_maxrss`).
//!
//! ```text
//! cargo run --release --example skynet                  # one worker
//! cargo run --release --example skynet -- --workers 2   # two workers
//! options: --stack BYTES (fiber stack size, default 16 KiB), --runs R
//! ```
//!
//! On one worker every fiber is spawned locally (`spindle::spawn`). On N
//! workers the top two levels (the root's 10 children and their 100) are
//! placed with `spawn_balanced`, so the 100 subtrees of 11,111 fibers
//! spread over the workers; below that, spawns are local (a fiber never
//! migrates, and a local spawn costs no message).
//!
//! The Go peer is `benches/peers/skynet/skynet.go` (see its README); run
//! both in the same session to compare.

use std::time::Instant;

/// Fibers in the tree: 1 + 10 + ... + 10^6.
const FIBERS: u64 = 1_111_111;
const LEAVES: u64 = 1_000_000;

/// The subtree of `size` leaves numbered from `num`, spawned locally.
fn skynet(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let step = size / 10;
    let children: Vec<_> = (0..10)
        .map(|i| spindle::spawn(move || skynet(num + i * step, step)))
        .collect();
    children.into_iter().map(|h| h.join().unwrap()).sum()
}

/// The subtree of `size` leaves numbered from `num`; the `balanced` levels
/// nearest the root place their children with `spawn_balanced`.
fn skynet_spread(num: u64, size: u64, balanced: u32) -> u64 {
    if balanced == 0 {
        return skynet(num, size);
    }
    let step = size / 10;
    let children: Vec<_> = (0..10)
        .map(|i| spindle::spawn_balanced(move || skynet_spread(num + i * step, step, balanced - 1)))
        .collect();
    children.into_iter().map(|h| h.join().unwrap()).sum()
}

fn peak_rss_bytes() -> u64 {
    // SAFETY: getrusage writes the struct we hand it and nothing else.
    let usage = unsafe {
        let mut u = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    usage.ru_maxrss as u64 * 1024
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.replace('_', "").parse::<usize>().ok())
    };
    let workers = value("--workers").unwrap_or(1);
    let stack = value("--stack").unwrap_or(16 * 1024);
    let runs = value("--runs").unwrap_or(1);

    let rt = spindle::Runtime::builder()
        .workers(workers)
        .stack_size(stack)
        .build()
        .expect("runtime");
    for _ in 0..runs {
        let t0 = Instant::now();
        let sum = rt.block_on(move || {
            if workers == 1 {
                skynet(0, LEAVES)
            } else {
                skynet_spread(0, LEAVES, 2)
            }
        });
        let wall = t0.elapsed();
        assert_eq!(sum, LEAVES * (LEAVES - 1) / 2, "wrong sum");
        println!(
            "skynet workers={workers} stack={}KiB fibers={FIBERS} sum={sum} wall={:.3}s \
             ({:.2} us/fiber) peak_rss={:.1}MiB",
            stack / 1024,
            wall.as_secs_f64(),
            wall.as_secs_f64() * 1e6 / FIBERS as f64,
            peak_rss_bytes() as f64 / (1024.0 * 1024.0)
        );
    }
}
