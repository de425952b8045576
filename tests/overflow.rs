//! Stack overflows: a fiber's is reported by name, anything else is left to
//! the handler that was there before (Rust's own for ordinary threads).
//!
//! Every case crashes, so each test re-runs this binary as a child process
//! on itself (`--exact`), with [`CASE`] telling the child to crash, and
//! checks the child's signal and stderr.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use spindle::coroutine::{Builder, Coroutine, Yielder};
use spindle::stack::{GuardKind, Stack};

#[path = "common/child.rs"]
mod child;

/// Environment variable telling a child which case to run.
const CASE: &str = "SPINDLE_OVERFLOW_TEST_CASE";

/// Runs `test` again in a child with `CASE=test`, unless this process *is*
/// that child, in which case it runs `crash` (which should not return).
fn crash_in_child(test: &str, crash: impl FnOnce()) -> Option<Output> {
    if child::is_child(CASE, test) {
        crash();
        eprintln!("the crash case returned");
        return None;
    }
    Some(child::run_child(CASE, test, test))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_signal(out: &Output, signal: libc::c_int) {
    assert_eq!(
        out.status.signal(),
        Some(signal),
        "expected signal {signal}, got {:?}; stderr:\n{}",
        out.status,
        stderr(out)
    );
}

/// Recurses until the stack runs out; each frame keeps 256 bytes live.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(frame[depth as usize % 32])
}

/// Writes through a null pointer (not a guard hit).
fn null_write() {
    // SAFETY: deliberately faults: address 0 is never mapped.
    unsafe { std::ptr::write_volatile(black_box(std::ptr::null_mut::<u8>()), 1) };
}

/// Overflows an ordinary thread with a 64 KiB stack and waits for it.
fn overflow_a_thread() {
    std::thread::Builder::new()
        .name("plain".into())
        .stack_size(64 * 1024)
        .spawn(|| recurse(0))
        .unwrap()
        .join()
        .ok();
}

// ---- needs spindle::coroutine ---------------------------------------------

#[test]
fn fiber_overflow_is_reported_by_name() {
    let Some(out) = crash_in_child("fiber_overflow_is_reported_by_name", || {
        let mut co = Builder::new()
            .name("deep")
            .stack_size(64 * 1024)
            .build(|_y: &Yielder<(), ()>, ()| recurse(0))
            .unwrap();
        co.resume(());
    }) else {
        return;
    };
    assert_signal(&out, libc::SIGABRT);
    assert!(
        stderr(&out).contains("fiber 'deep' overflowed its 64 KiB stack"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unnamed_fiber_overflow_is_reported() {
    let Some(out) = crash_in_child("unnamed_fiber_overflow_is_reported", || {
        let stack = Stack::new(128 * 1024).unwrap();
        let mut co = Coroutine::with_stack(stack, |_y: &Yielder<(), ()>, ()| recurse(0));
        co.resume(());
    }) else {
        return;
    };
    assert_signal(&out, libc::SIGABRT);
    assert!(
        stderr(&out).contains("fiber '<unnamed>' overflowed its 128 KiB stack"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn fiber_overflow_with_mprotect_guard_is_reported() {
    let Some(out) = crash_in_child("fiber_overflow_with_mprotect_guard_is_reported", || {
        let stack = Stack::with_guard(64 * 1024, GuardKind::Mprotect).unwrap();
        let mut co = Builder::new()
            .name("fallback")
            .stack(stack)
            .build(|_y: &Yielder<(), ()>, ()| recurse(0))
            .unwrap();
        co.resume(());
    }) else {
        return;
    };
    assert_signal(&out, libc::SIGABRT);
    assert!(
        stderr(&out).contains("fiber 'fallback' overflowed its 64 KiB stack"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn overflow_of_a_fiber_resumed_by_a_fiber_names_the_inner_one() {
    let Some(out) = crash_in_child(
        "overflow_of_a_fiber_resumed_by_a_fiber_names_the_inner_one",
        || {
            let mut outer = Builder::new()
                .name("outer")
                .build(|_y: &Yielder<(), ()>, ()| {
                    let mut inner = Builder::new()
                        .name("inner")
                        .stack_size(32 * 1024)
                        .build(|_y: &Yielder<(), ()>, ()| recurse(0))
                        .unwrap();
                    inner.resume(());
                })
                .unwrap();
            outer.resume(());
        },
    ) else {
        return;
    };
    assert_signal(&out, libc::SIGABRT);
    assert!(
        stderr(&out).contains("fiber 'inner' overflowed its 32 KiB stack"),
        "{}",
        stderr(&out)
    );
}

/// A coroutine that suspends the chain it runs in (its outer coroutine's
/// yielder, called from inside an inner coroutine) and is resumed again:
/// the inner one runs on, and its overflow is still reported by its name.
#[test]
fn inner_overflow_after_a_chain_suspension_names_the_inner_one() {
    let Some(out) = crash_in_child(
        "inner_overflow_after_a_chain_suspension_names_the_inner_one",
        || {
            let mut outer = Builder::new()
                .name("outer")
                .build(|outer_y: &Yielder<(), ()>, ()| {
                    let outer_y: *const Yielder<(), ()> = outer_y;
                    let mut inner = Builder::new()
                        .name("inner")
                        .stack_size(32 * 1024)
                        .build(move |_y: &Yielder<(), ()>, ()| {
                            // SAFETY: the outer coroutine's yielder lives
                            // on its stack for as long as this runs.
                            unsafe { (*outer_y).suspend(()) };
                            recurse(0)
                        })
                        .unwrap();
                    inner.resume(());
                })
                .unwrap();
            outer.resume(()); // Suspended from inside `inner`.
            outer.resume(()); // Back in `inner`, which now overflows.
        },
    ) else {
        return;
    };
    assert_signal(&out, libc::SIGABRT);
    assert!(
        stderr(&out).contains("fiber 'inner' overflowed its 32 KiB stack"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn null_write_in_a_fiber_is_a_plain_segfault() {
    let Some(out) = crash_in_child("null_write_in_a_fiber_is_a_plain_segfault", || {
        let mut co = Builder::new()
            .name("deep")
            .stack_size(64 * 1024)
            .build(|_y: &Yielder<(), ()>, ()| null_write())
            .unwrap();
        co.resume(());
    }) else {
        return;
    };
    assert_signal(&out, libc::SIGSEGV);
    assert!(!stderr(&out).contains("overflowed"), "{}", stderr(&out));
}

#[test]
fn thread_overflow_after_a_coroutine_keeps_rusts_report() {
    let Some(out) = crash_in_child(
        "thread_overflow_after_a_coroutine_keeps_rusts_report",
        || {
            let mut co = Coroutine::new(|_y: &Yielder<u32, ()>, x: u32| x + 1);
            co.resume(1);
            overflow_a_thread();
        },
    ) else {
        return;
    };
    assert_signal(&out, libc::SIGABRT);
    let err = stderr(&out);
    // Rust's report: "thread 'plain' (<tid>) has overflowed its stack".
    assert!(err.contains("thread 'plain'"), "{err}");
    assert!(err.contains("has overflowed its stack"), "{err}");
    assert!(!err.contains("fiber '"), "{err}");
}

// ---- needs only the stack layer --------------------------------------------

#[test]
fn thread_overflow_with_handler_installed_keeps_rusts_report() {
    let Some(out) = crash_in_child(
        "thread_overflow_with_handler_installed_keeps_rusts_report",
        || {
            spindle::stack::install_overflow_handler();
            overflow_a_thread();
        },
    ) else {
        return;
    };
    assert_signal(&out, libc::SIGABRT);
    let err = stderr(&out);
    // Rust's report: "thread 'plain' (<tid>) has overflowed its stack".
    assert!(err.contains("thread 'plain'"), "{err}");
    assert!(err.contains("has overflowed its stack"), "{err}");
    assert!(!err.contains("fiber '"), "{err}");
}

#[test]
fn null_write_with_handler_installed_is_a_plain_segfault() {
    let Some(out) = crash_in_child(
        "null_write_with_handler_installed_is_a_plain_segfault",
        || {
            spindle::stack::install_overflow_handler();
            null_write();
        },
    ) else {
        return;
    };
    assert_signal(&out, libc::SIGSEGV);
    assert!(!stderr(&out).contains("overflowed"), "{}", stderr(&out));
}

#[test]
fn handler_install_on_a_thread_is_idempotent() {
    // Many threads, several calls each: no crash, nothing leaks.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..3 {
                    spindle::stack::install_overflow_handler();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

// ---- needs spindle::runtime ------------------------------------------------

#[test]
fn an_overflow_on_a_reused_stack_names_the_fiber_that_overflowed() {
    let test = "an_overflow_on_a_reused_stack_names_the_fiber_that_overflowed";
    let Some(out) = crash_in_child(test, || {
        spindle::run(|| {
            // "first" runs, ends and gives its stack back to the pool;
            // "second" takes that stack at its first resume.
            spindle::Builder::new()
                .name("first".into())
                .stack_size(64 * 1024)
                .spawn(|| black_box(1))
                .unwrap()
                .join()
                .unwrap();
            let chunks = spindle::stack::StackPool::stats().chunks;
            spindle::Builder::new()
                .name("second".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    assert_eq!(
                        spindle::stack::StackPool::stats().chunks,
                        chunks,
                        "no stack was reused"
                    );
                    recurse(0)
                })
                .unwrap()
                .join()
                .ok();
        });
    }) else {
        return;
    };
    assert_signal(&out, libc::SIGABRT);
    let err = stderr(&out);
    assert!(
        err.contains("fiber 'second' overflowed its 64 KiB stack"),
        "{}",
        child::text(&out)
    );
    assert!(!err.contains("'first'"), "{}", child::text(&out));
}
