//! Guard sizes: a stack's guard may be more than one page, so that a frame
//! larger than a page (C code compiled without stack-clash protection) is
//! caught as an overflow instead of writing into the stack below.
//!
//! Crashing cases re-run this test binary as a child process on one test
//! (`--exact`), with [`CASE`] naming what the child does.

use std::io;
use std::os::unix::process::ExitStatusExt;

use spindle::coroutine::{Builder, Yielder};
use spindle::stack::{GuardKind, Stack};

#[path = "common/child.rs"]
mod child;
#[path = "common/memory.rs"]
mod memory;

use child::text;
use memory::{kernel_refuses, page};

/// Environment variable telling a child which case to run.
const CASE: &str = "SPINDLE_GUARD_TEST_CASE";

/// A write of one byte at `addr`, as a C frame that moved the stack pointer
/// far down would do first.
fn poke(addr: usize) {
    // SAFETY: only called on an address of the fiber's own guard, in a
    // child that is meant to crash there.
    unsafe { std::ptr::write_volatile(addr as *mut u8, 0x5a) };
}

#[test]
fn a_guard_of_n_pages_is_n_pages_below_the_limit() {
    for pages in [1, 2, 16, 256] {
        let s = Stack::with_guard_pages(64 * 1024, pages).unwrap();
        assert_eq!(s.guard().len(), pages * page(), "{pages} pages");
        assert_eq!(s.guard().end, s.limit() as usize);
        assert_eq!(s.size(), 64 * 1024);
        // Every page of it is kept from us (either kind of guard).
        for p in 0..pages {
            let addr = s.guard().start + p * page();
            assert!(kernel_refuses(addr), "page {p} of {pages}");
        }
        assert!(!kernel_refuses(s.limit() as usize));
    }
}

#[test]
fn guard_sizes_out_of_range_are_invalid_input() {
    for pages in [0, Stack::MAX_GUARD_PAGES + 1] {
        let e = Stack::with_guard_pages(64 * 1024, pages).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{pages}: {e}");
        assert!(e.to_string().contains("guard"), "{e}");
        let e = spindle::Runtime::builder()
            .guard_pages(pages)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{pages}: {e}");
    }
    spindle::run(|| {
        let e = spindle::Builder::new()
            .guard_pages(0)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    });
}

/// The pool keeps stacks of different guard sizes apart: a stack comes back
/// with the guard it was asked for, whatever was dropped before.
#[test]
fn pooled_stacks_keep_their_guard_size() {
    let size = 80 * 1024; // a size no other test of this binary uses
    let big = Stack::with_guard_pages(size, 8).unwrap();
    let big_limit = big.limit();
    drop(big); // into this thread's pool
    let small = Stack::new(size).unwrap();
    assert_eq!(small.guard().len(), page(), "a default stack got 8 pages");
    assert_ne!(small.limit(), big_limit);
    let big = Stack::with_guard_pages(size, 8).unwrap();
    assert_eq!(big.limit(), big_limit, "the pooled 8-page stack is reused");
    assert_eq!(big.guard().len(), 8 * page());
    // With a kind given, the guard size still has to match.
    if big.guard_kind() == GuardKind::preferred() {
        drop(big);
        let other = Stack::with_guard(size, GuardKind::preferred()).unwrap();
        assert_eq!(other.guard().len(), page());
    }
}

/// Runtime fibers get the runtime's guard size, or their builder's.
#[test]
fn runtime_and_task_guard_sizes_apply() {
    let rt = spindle::Runtime::builder().guard_pages(4).build().unwrap();
    let got = rt.block_on(|| {
        let h = spindle::Builder::new()
            .guard_pages(32)
            .stack_size(64 * 1024)
            .spawn(|| deep(200))
            .unwrap();
        (deep(200), h.join().unwrap())
    });
    assert_eq!(got, (deep_value(200), deep_value(200)));
}

/// Recursion that uses a few KiB of stack, to run something real on the
/// guarded stacks.
#[inline(never)]
fn deep(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 4]);
    if n == 0 {
        0
    } else {
        deep(n - 1).wrapping_add(frame[n as usize % 4])
    }
}

fn deep_value(n: u64) -> u64 {
    n * (n + 1) / 2
}

/// A write 8 pages below the limit, what a C frame of 32 KiB does with its
/// first store after moving the stack pointer: with a 16-page guard it is
/// an overflow, reported by name.
#[test]
fn a_write_far_below_the_limit_hits_a_large_guard() {
    if child::is_child(CASE, "far") {
        let stack = Stack::with_guard_pages(64 * 1024, 16).unwrap();
        let target = stack.limit() as usize - 8 * page();
        let mut co = Builder::new()
            .name("c-frame")
            .stack(stack)
            .build(move |_y: &Yielder<(), ()>, ()| poke(target))
            .unwrap();
        co.resume(());
        eprintln!("the write did not fault");
        return;
    }
    let out = child::run_child(
        CASE,
        "a_write_far_below_the_limit_hits_a_large_guard",
        "far",
    );
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fiber 'c-frame' overflowed its 64 KiB stack"),
        "{}",
        text(&out)
    );
}
