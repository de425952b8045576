//! Stacks: sizes, guards, the pool, and failures of the kernel.
//!
//! Tests that must crash, or that need the process to themselves (global
//! counters, the map limit, `RLIMIT_AS`), re-run this test binary as a child
//! process on one test, selected by `--exact`, with [`CASE`] naming what the
//! child does; the parent checks the child's signal or exit status and its
//! output.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use spindle::stack::{GuardKind, Stack, StackError, StackPool};

#[path = "common/child.rs"]
mod child;
#[path = "common/memory.rs"]
mod memory;

use child::text;
use memory::{kernel_refuses, page};

/// Environment variable telling a child which case to run.
const CASE: &str = "SPINDLE_STACK_TEST_CASE";

/// Re-runs test `name` of this binary in a child with `CASE=case`.
fn run_child(name: &str, case: &str) -> Output {
    child::run_child(CASE, name, case)
}

/// Whether this process is a child running `case`.
fn is_child(case: &str) -> bool {
    child::is_child(CASE, case)
}

/// Asserts that the child was killed by a memory-access signal.
fn assert_faulted(out: &Output) {
    let sig = out.status.signal();
    assert!(
        sig == Some(libc::SIGSEGV) || sig == Some(libc::SIGBUS),
        "child was not killed by SIGSEGV/SIGBUS:\n{}",
        text(out)
    );
}

/// Asserts that the child's test passed (exit 0); repeats a skip notice.
fn assert_passed(out: &Output) {
    assert!(out.status.success(), "child failed:\n{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(line) = stderr.lines().find(|l| l.contains("SKIPPED")) {
        eprintln!("child: {line}");
    }
}

/// Writes one byte at `addr`; faults if it is a guard.
fn poke(addr: usize) {
    // SAFETY: only ever called on addresses that are either mapped and owned
    // by the test's stack, or that are meant to fault (in a child).
    unsafe { std::ptr::write_volatile(addr as *mut u8, 0x5a) };
}

/// Lines of /proc/self/maps: the process's memory maps.
fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// Whether this build is expected to have enforced madvise guards: native
/// x86_64 on Linux 6.13 or later (the aarch64 suite runs under qemu-user,
/// which does not enforce them, so there the fallback is asserted instead).
fn expect_madvise() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().unwrap().parse().unwrap();
    let minor: u32 = parts.next().unwrap().parse().unwrap();
    (major, minor) >= (6, 13)
}

// ---- sizes ---------------------------------------------------------------

#[test]
fn zero_size_is_invalid_input() {
    let err = Stack::new(0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("MIN_SIZE"), "{err}");
    let err = Stack::with_guard(0, GuardKind::Mprotect).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn below_min_size_is_invalid_input() {
    for size in [1, 4096, Stack::MIN_SIZE - 1] {
        let err = Stack::new(size).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{size}");
        assert!(err.to_string().contains("below Stack::MIN_SIZE"), "{err}");
    }
}

#[test]
fn huge_sizes_are_invalid_input() {
    for size in [
        usize::MAX,
        usize::MAX - page() + 2,
        Stack::MAX_SIZE + 1,
        1 << 62,
    ] {
        let err = Stack::new(size).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{size}");
        assert!(err.to_string().contains("MAX_SIZE"), "{err}");
    }
}

#[test]
fn sizes_round_up_to_whole_pages() {
    let page = page();
    assert_eq!(Stack::new(Stack::MIN_SIZE).unwrap().size(), Stack::MIN_SIZE);
    assert_eq!(
        Stack::new(Stack::MIN_SIZE + 1).unwrap().size(),
        Stack::MIN_SIZE + page
    );
    assert_eq!(
        Stack::new(100_000).unwrap().size(),
        100_000usize.div_ceil(page) * page
    );
    assert_eq!(
        Stack::new(Stack::DEFAULT_SIZE).unwrap().size(),
        Stack::DEFAULT_SIZE
    );
}

#[test]
fn addresses_are_consistent_and_aligned() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Stack>();
    for kind in [GuardKind::preferred(), GuardKind::Mprotect] {
        let s = Stack::with_guard(40_000, kind).unwrap();
        let (base, limit) = (s.base() as usize, s.limit() as usize);
        assert_eq!(base % 16, 0);
        assert_eq!(base % page(), 0);
        assert_eq!(base - limit, s.size());
        assert_eq!(s.guard().end, limit);
        assert!(s.guard().len() >= page());
        assert_eq!(s.guard().start % page(), 0);
        assert_eq!(s.guard_kind(), kind);
    }
}

#[test]
fn usable_memory_is_writable_end_to_end() {
    for kind in [GuardKind::preferred(), GuardKind::Mprotect] {
        let s = Stack::with_guard(Stack::DEFAULT_SIZE, kind).unwrap();
        // SAFETY: limit..base is the stack's usable memory, owned by `s`.
        let mem = unsafe { std::slice::from_raw_parts_mut(s.limit(), s.size()) };
        for (i, b) in mem.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert!(mem.iter().enumerate().all(|(i, &b)| b == i as u8));
    }
}

// ---- guards --------------------------------------------------------------

#[test]
fn preferred_guard_kind_is_honest() {
    let kind = GuardKind::preferred();
    eprintln!("guard kind in this process: {kind:?}");
    if expect_madvise() {
        assert_eq!(
            kind,
            GuardKind::Madvise,
            "Linux >= 6.13 on x86_64 enforces madvise guards"
        );
    }
    if kind == GuardKind::Mprotect {
        // The fallback is explicit, not silent: forcing madvise says why not.
        assert!(!GuardKind::Madvise.is_available());
        let err = Stack::with_guard(Stack::MIN_SIZE, GuardKind::Madvise).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(err.to_string().contains("MADV_GUARD_INSTALL"), "{err}");
    }
    StackPool::clear(); // a pooled stack of the other kind would do for new()
    assert_eq!(Stack::new(Stack::MIN_SIZE).unwrap().guard_kind(), kind);
    assert!(GuardKind::Mprotect.is_available());
}

#[test]
fn guards_are_inaccessible() {
    for kind in [GuardKind::Madvise, GuardKind::Mprotect] {
        if !kind.is_available() {
            eprintln!("skipping {kind:?}: not enforced here (see preferred_guard_kind_is_honest)");
            continue;
        }
        let s = Stack::with_guard(Stack::MIN_SIZE, kind).unwrap();
        assert!(kernel_refuses(s.guard().start), "{kind:?}");
        assert!(kernel_refuses(s.guard().end - 1), "{kind:?}");
        assert!(!kernel_refuses(s.limit() as usize), "{kind:?}");
        assert!(!kernel_refuses(s.base() as usize - 1), "{kind:?}");
    }
}

#[test]
fn touching_an_mprotect_guard_faults() {
    if is_child("mprotect") {
        let s = Stack::with_guard(Stack::MIN_SIZE, GuardKind::Mprotect).unwrap();
        poke(s.limit() as usize - 1);
        return;
    }
    assert_faulted(&run_child("touching_an_mprotect_guard_faults", "mprotect"));
}

#[test]
fn touching_a_madvise_guard_faults() {
    if !GuardKind::Madvise.is_available() {
        // Fallback (old kernel, or qemu-user): asserted, and said out loud.
        assert!(!expect_madvise());
        assert_eq!(GuardKind::preferred(), GuardKind::Mprotect);
        eprintln!("SKIPPED touching_a_madvise_guard_faults: madvise guards not enforced here");
        return;
    }
    if is_child("madvise") {
        let s = Stack::with_guard(Stack::MIN_SIZE, GuardKind::Madvise).unwrap();
        poke(s.guard().start);
        return;
    }
    assert_faulted(&run_child("touching_a_madvise_guard_faults", "madvise"));
}

#[test]
fn underflow_past_base_faults_in_next_guard() {
    // Only madvise stacks share a chunk; the slot above has a guard once it
    // has been handed out, so take two neighbours.
    if !GuardKind::Madvise.is_available() {
        eprintln!("SKIPPED underflow_past_base_faults_in_next_guard: needs madvise chunks");
        return;
    }
    if is_child("underflow") {
        let a = Stack::with_guard(Stack::MIN_SIZE, GuardKind::Madvise).unwrap();
        let b = Stack::with_guard(Stack::MIN_SIZE, GuardKind::Madvise).unwrap();
        let (low, high) = if a.base() < b.base() { (a, b) } else { (b, a) };
        assert_eq!(
            low.base() as usize,
            high.guard().start,
            "slots are adjacent"
        );
        poke(low.base() as usize);
        return;
    }
    assert_faulted(&run_child(
        "underflow_past_base_faults_in_next_guard",
        "underflow",
    ));
}

// ---- the pool ------------------------------------------------------------

#[test]
fn dropped_stack_is_reused_from_the_pool() {
    std::thread::spawn(|| {
        let s = Stack::new(96 * 1024).unwrap();
        let base = s.base();
        assert_eq!(StackPool::pooled_here(), 0);
        drop(s);
        assert_eq!(StackPool::pooled_here(), 1);
        let s = Stack::new(96 * 1024).unwrap();
        assert_eq!(s.base(), base);
        assert_eq!(StackPool::pooled_here(), 0);
        // A pooled stack of another size is not handed out for this one.
        drop(s);
        let t = Stack::new(128 * 1024).unwrap();
        assert_ne!(t.base(), base);
        assert_eq!(StackPool::pooled_here(), 1);
    })
    .join()
    .unwrap();
}

#[test]
fn with_guard_reuses_only_its_kind() {
    std::thread::spawn(|| {
        let m = Stack::with_guard(80 * 1024, GuardKind::Mprotect).unwrap();
        let base = m.base();
        drop(m);
        let again = Stack::with_guard(80 * 1024, GuardKind::Mprotect).unwrap();
        assert_eq!(again.base(), base);
        assert_eq!(again.guard_kind(), GuardKind::Mprotect);
        drop(again);
        if GuardKind::Madvise.is_available() {
            let other = Stack::with_guard(80 * 1024, GuardKind::Madvise).unwrap();
            assert_ne!(other.base(), base);
            assert_eq!(other.guard_kind(), GuardKind::Madvise);
        }
    })
    .join()
    .unwrap();
}

#[test]
fn reused_stack_is_still_guarded() {
    if is_child("reused") {
        let s = Stack::new(Stack::MIN_SIZE).unwrap();
        let base = s.base();
        drop(s);
        let s = Stack::new(Stack::MIN_SIZE).unwrap();
        assert_eq!(s.base(), base, "came from the pool");
        assert!(kernel_refuses(s.limit() as usize - 1));
        poke(s.limit() as usize - 1);
        return;
    }
    assert_faulted(&run_child("reused_stack_is_still_guarded", "reused"));
}

#[test]
fn pool_is_bounded_by_count() {
    std::thread::spawn(|| {
        let stacks: Vec<Stack> = (0..StackPool::MAX_STACKS + 20)
            .map(|_| Stack::new(Stack::MIN_SIZE).unwrap())
            .collect();
        drop(stacks);
        assert_eq!(StackPool::pooled_here(), StackPool::MAX_STACKS);
        StackPool::clear();
        assert_eq!(StackPool::pooled_here(), 0);
    })
    .join()
    .unwrap();
}

#[test]
fn pool_is_bounded_by_bytes() {
    std::thread::spawn(|| {
        let size = 4 << 20;
        let stacks: Vec<Stack> = (0..20).map(|_| Stack::new(size).unwrap()).collect();
        drop(stacks);
        assert_eq!(StackPool::pooled_here(), StackPool::MAX_BYTES / size);
    })
    .join()
    .unwrap();
}

#[test]
fn stack_dropped_on_another_thread_goes_to_that_pool() {
    let s = std::thread::spawn(|| Stack::new(72 * 1024).unwrap())
        .join()
        .unwrap();
    let base = s.base() as usize;
    std::thread::spawn(move || {
        drop(s);
        assert_eq!(StackPool::pooled_here(), 1);
        assert_eq!(Stack::new(72 * 1024).unwrap().base() as usize, base);
    })
    .join()
    .unwrap();
}

/// Global counters: in a child, so no other test moves them meanwhile.
#[test]
fn counters_show_reuse_release_and_no_leak() {
    if !is_child("counters") {
        assert_passed(&run_child(
            "counters_show_reuse_release_and_no_leak",
            "counters",
        ));
        return;
    }
    let before = StackPool::stats();
    assert_eq!(before.live, 0);
    // Pool hits never reach the allocator (hence make no syscall).
    let first = Stack::new(Stack::MIN_SIZE).unwrap();
    drop(first);
    let allocated = StackPool::stats().allocated;
    for _ in 0..1000 {
        let s = Stack::new(Stack::MIN_SIZE).unwrap();
        assert_eq!(StackPool::stats().live, 1);
        drop(s);
    }
    let stats = StackPool::stats();
    assert_eq!(stats.allocated, allocated);
    assert_eq!((stats.live, stats.pooled, stats.pooled_here), (0, 1, 1));

    // A stack given back to its chunk while another stack of it is out is
    // retained: handed out again first, with its pages as they were (no
    // page fault, no syscall), and still guarded.
    StackPool::clear();
    let keep = Stack::new(Stack::MIN_SIZE).unwrap();
    let s = Stack::new(Stack::MIN_SIZE).unwrap();
    poke(s.base() as usize - 1);
    poke(s.limit() as usize);
    let base = s.base();
    drop(s);
    StackPool::clear();
    let madvise = keep.guard_kind() == GuardKind::Madvise;
    if madvise {
        // (An mprotect stack has a mapping of its own, unmapped on release.)
        assert_eq!(StackPool::stats().retained_bytes, Stack::MIN_SIZE + page());
    }
    let s = Stack::new(Stack::MIN_SIZE).unwrap();
    if madvise {
        assert_eq!(
            s.base(),
            base,
            "the retained slot is the first handed out again"
        );
        assert_eq!(StackPool::stats().retained_bytes, 0);
        // SAFETY: inside the usable memory of `s`.
        unsafe {
            assert_eq!(*s.base().sub(1), 0x5a, "a retained slot keeps its pages");
        }
    }
    assert!(kernel_refuses(s.limit() as usize - 1));

    // Retention is bounded: with one stack in 16 kept alive (so no chunk
    // empties), give back more than the budget's worth (80 MiB of slots)
    // and the rest are discarded instead.
    if madvise {
        let budget = 64 << 20;
        let slot = Stack::MIN_SIZE + page();
        let mut many: Vec<Stack> = (0..4000)
            .map(|_| Stack::new(Stack::MIN_SIZE).unwrap())
            .collect();
        for st in &many {
            poke(st.base() as usize - 1);
        }
        let mut kept = Vec::new();
        for (i, st) in many.drain(..).enumerate() {
            if i % 16 == 0 {
                kept.push(st);
            }
        }
        StackPool::clear();
        let stats = StackPool::stats();
        let retained = stats.retained_bytes;
        assert!(
            retained <= budget && retained > budget - slot,
            "retained {retained} bytes, budget {budget}"
        );
        // Past the budget, slots wait dirty and are discarded in batches:
        // what waits is bounded (at most one batch per chunk, and 64 MiB).
        assert!(stats.dirty_bytes <= 64 << 20, "{stats:?}");
        assert!(
            stats.dirty_bytes < 4000 * slot,
            "nothing discarded: {stats:?}"
        );
        // Every slot handed out again (retained, dirty, discarded or fresh)
        // is still guarded: a batch's `madvise` spans the guards between its
        // slots, and guard markers survive it. Its memory reads as zero
        // (discarded or fresh) or as its last user left it.
        let again: Vec<Stack> = (0..3750)
            .map(|_| Stack::new(Stack::MIN_SIZE).unwrap())
            .collect();
        for st in &again {
            assert!(kernel_refuses(st.limit() as usize - 1), "guard lost");
            // SAFETY: inside the usable memory of `st`.
            let last = unsafe { *st.base().sub(1) };
            assert!(last == 0 || last == 0x5a, "stale byte {last:#x}");
        }
        drop(again);
        drop(kept);
        StackPool::clear();
    }

    // Nothing alive: every chunk is unmapped.
    drop((s, keep));
    StackPool::clear();
    let stats = StackPool::stats();
    assert_eq!(
        (stats.live, stats.pooled, stats.chunks, stats.mapped_bytes),
        (0, 0, 0, 0)
    );
    assert_eq!(stats.allocated, stats.released);
}

#[test]
fn thread_exit_drains_its_pool() {
    if !is_child("drain") {
        assert_passed(&run_child("thread_exit_drains_its_pool", "drain"));
        return;
    }
    std::thread::spawn(|| {
        let v: Vec<Stack> = (0..10)
            .map(|_| Stack::new(Stack::MIN_SIZE).unwrap())
            .collect();
        drop(v);
        assert_eq!(StackPool::stats().pooled, 10);
    })
    .join()
    .unwrap();
    let stats = StackPool::stats();
    assert_eq!(
        (stats.live, stats.pooled, stats.chunks),
        (0, 0, 0),
        "{stats:?}"
    );
}

// ---- the kernel says no --------------------------------------------------

/// `VmSize` of this process in bytes.
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn address_space_limit_gives_a_clean_error() {
    if !is_child("rlimit") {
        let out = run_child("address_space_limit_gives_a_clean_error", "rlimit");
        assert_passed(&out);
        let text = text(&out);
        if !text.contains("SKIPPED") {
            assert!(text.contains("error as reported:"), "{text}");
            assert!(text.contains("RLIMIT_AS"), "{text}");
        }
        return;
    }
    let headroom = 8 << 20;
    let lim = libc::rlimit {
        rlim_cur: vm_size() + headroom,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: sets this (child) process's soft address-space limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    if memmap2::MmapOptions::new().len(64 << 20).map_anon().is_ok() {
        // qemu-user accepts setrlimit(RLIMIT_AS) and ignores it (the limit
        // would bind qemu itself); there is nothing to test then.
        assert!(!expect_madvise(), "RLIMIT_AS must be enforced natively");
        eprintln!("SKIPPED address_space_limit_gives_a_clean_error: RLIMIT_AS not enforced here");
        return;
    }
    for kind in [None, Some(GuardKind::Mprotect)] {
        let size = 64 << 20; // more than the headroom, even for one slot
        let err = match kind {
            None => Stack::new(size).unwrap_err(),
            Some(kind) => Stack::with_guard(size, kind).unwrap_err(),
        };
        let msg = err.to_string();
        eprintln!("error as reported: {msg}");
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{msg}");
        assert!(msg.contains("RLIMIT_AS"), "{msg}");
        assert!(msg.contains("vm.max_map_count"), "{msg}");
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<StackError>());
        let inner = inner.expect("a StackError inside");
        assert_eq!(inner.os_error().raw_os_error(), Some(libc::ENOMEM));
        assert_eq!(inner.stack_size(), size);
    }
    // Small stacks still fit in what is left.
    assert!(Stack::new(Stack::MIN_SIZE).is_ok());
}

/// Enough live stacks that mprotect guards (two maps each) could not hold
/// them under the default `vm.max_map_count` of 65,530.
const MANY: usize = 40_000;

#[test]
fn many_live_stacks_with_madvise_guards() {
    if !GuardKind::Madvise.is_available() {
        assert!(!expect_madvise());
        eprintln!("SKIPPED many_live_stacks_with_madvise_guards: madvise guards not enforced here");
        return;
    }
    if !is_child("many") {
        let out = run_child("many_live_stacks_with_madvise_guards", "many");
        assert_passed(&out);
        return;
    }
    let maps_before = map_count();
    let mut stacks = Vec::with_capacity(MANY);
    for _ in 0..MANY {
        let s = Stack::with_guard(Stack::MIN_SIZE, GuardKind::Madvise).unwrap();
        poke(s.base() as usize - 1);
        stacks.push(s);
    }
    let maps = map_count();
    let stats = StackPool::stats();
    eprintln!(
        "{MANY} live stacks: {} chunks, {} MiB reserved, maps {maps_before} -> {maps}",
        stats.chunks,
        stats.mapped_bytes >> 20
    );
    assert_eq!(stats.live, MANY);
    assert!(
        maps - maps_before < 100,
        "maps grew from {maps_before} to {maps}"
    );
    for s in &stacks[..100] {
        assert!(kernel_refuses(s.guard().start));
    }
    drop(stacks);
    StackPool::clear();
    let stats = StackPool::stats();
    assert_eq!((stats.live, stats.chunks), (0, 0));
}

#[test]
fn mprotect_stacks_run_into_max_map_count_cleanly() {
    if !is_child("maps") {
        let out = run_child("mprotect_stacks_run_into_max_map_count_cleanly", "maps");
        assert_passed(&out);
        return;
    }
    let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if max > 1 << 18 {
        // Some distributions raise the limit to 1,048,576; exhausting that
        // takes too long for a unit test, and the limit is not ours to lower.
        eprintln!(
            "SKIPPED mprotect_stacks_run_into_max_map_count_cleanly: vm.max_map_count = {max}"
        );
        return;
    }
    let mut stacks = Vec::with_capacity(max);
    let err = loop {
        match Stack::with_guard(Stack::MIN_SIZE, GuardKind::Mprotect) {
            Ok(s) => stacks.push(s),
            Err(e) => break e,
        }
        assert!(
            stacks.len() < max,
            "vm.max_map_count should have stopped us"
        );
    };
    let count = stacks.len();
    drop(stacks);
    StackPool::clear();
    let msg = err.to_string();
    eprintln!("failed after {count} stacks: {msg}");
    assert!(
        count > max / 2 - 1000,
        "two maps per stack: {count} of {max}"
    );
    assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{msg}");
    assert!(msg.contains(&format!("vm.max_map_count = {max}")), "{msg}");
    assert_eq!(StackPool::stats().live, 0);
    // And the process goes on: stacks can be had again.
    assert!(Stack::with_guard(Stack::MIN_SIZE, GuardKind::Mprotect).is_ok());
}
