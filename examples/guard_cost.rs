//! What a larger stack guard costs: for guards of 1 to 256 pages, the time
//! to take 10,000 fresh 64 KiB stacks and give them back, and what the
//! 10,000 live stacks cost the process in memory maps, page tables and
//! address space.
//!
//! ```text
//! cargo run --release --example guard_cost
//! ```
//!
//! Each guard size runs 5 rounds; the report shows the median. Stacks come
//! fresh from the allocator in every round (the per-thread pool is emptied
//! first, and a chunk is unmapped when its last stack goes back), so the
//! times include mapping the chunks and installing one guard per stack.

use std::time::{Duration, Instant};

use spindle::stack::{Stack, StackPool};

const STACKS: usize = 10_000;
const ROUNDS: usize = 5;
const SIZE: usize = 64 * 1024;

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .count()
}

struct Round {
    take: Duration,
    give_back: Duration,
    maps: usize,
    pte_kib: u64,
    vm_kib: u64,
}

fn round(pages: usize) -> Round {
    StackPool::clear();
    let (maps0, pte0, vm0) = (maps(), status_kib("VmPTE:"), status_kib("VmSize:"));
    let start = Instant::now();
    let stacks: Vec<Stack> = (0..STACKS)
        .map(|_| Stack::with_guard_pages(SIZE, pages).expect("stack"))
        .collect();
    let take = start.elapsed();
    let r = Round {
        take,
        give_back: Duration::ZERO,
        maps: maps().saturating_sub(maps0),
        pte_kib: status_kib("VmPTE:").saturating_sub(pte0),
        vm_kib: status_kib("VmSize:").saturating_sub(vm0),
    };
    let start = Instant::now();
    drop(stacks);
    StackPool::clear();
    Round {
        give_back: start.elapsed(),
        ..r
    }
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    println!(
        "{STACKS} fresh {} KiB stacks, guard kind {:?}; median of {ROUNDS} rounds",
        SIZE / 1024,
        spindle::stack::GuardKind::preferred()
    );
    println!(
        "{:>12} {:>14} {:>14} {:>8} {:>14} {:>16}",
        "guard pages", "take ns/stack", "drop ns/stack", "maps", "page tables", "address space"
    );
    let mut base_take = None;
    for pages in [1, 4, 16, 64, 256] {
        round(pages); // warm-up: the allocator's classes, the page cache
        let rounds: Vec<Round> = (0..ROUNDS).map(|_| round(pages)).collect();
        let take = median(rounds.iter().map(|r| r.take).collect()).as_nanos() / STACKS as u128;
        let give = median(rounds.iter().map(|r| r.give_back).collect()).as_nanos() / STACKS as u128;
        let maps = median(rounds.iter().map(|r| r.maps).collect());
        let pte = median(rounds.iter().map(|r| r.pte_kib).collect());
        let vm = median(rounds.iter().map(|r| r.vm_kib).collect());
        let base = *base_take.get_or_insert(take);
        println!(
            "{pages:>12} {take:>9} ({:.2}x) {give:>14} {maps:>8} {:>11} KiB {:>12} MiB",
            take as f64 / base as f64,
            pte,
            vm / 1024
        );
    }
}
