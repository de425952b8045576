//! Tests of the overflow handler: a coroutine on a given [`Stack`] writes
//! one byte into its own guard (a stand-in for a deep recursion, so each
//! case is exact about the address). Each crash runs in a child process
//! (this test binary, re-run on one test).

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use super::{ensure_installed, overflowed_fiber, FiberInfo};
use crate::coroutine::{Builder, Yielder};
use crate::stack::{GuardKind, Stack};

const CASE: &str = "SPINDLE_OVERFLOW_UNIT_CASE";

/// Re-runs the test `name` (full path) in a child with `CASE=case`.
fn run_child(name: &str, case: &str) -> Output {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .output()
        .expect("spawn child")
}

fn is_child(case: &str) -> bool {
    std::env::var(CASE).is_ok_and(|c| c == case)
}

/// Runs a coroutine named `name` on `stack` that writes one byte at
/// `target(stack's guard)`. Returns only if the write did not fault.
fn fault_in_fiber(stack: Stack, name: Option<&str>, target: fn(std::ops::Range<usize>) -> usize) {
    let addr = target(stack.guard());
    let mut builder = Builder::new().stack(stack);
    if let Some(name) = name {
        builder = builder.name(name);
    }
    let mut co = builder
        .build(move |_: &Yielder<(), ()>, ()| {
            // SAFETY: deliberately faults (the guard is inaccessible, and
            // the other targets are unmapped); the handler aborts the
            // process or the default action kills it.
            unsafe { std::ptr::write_volatile(std::hint::black_box(addr) as *mut u8, 1) };
        })
        .unwrap();
    co.resume(());
}

/// The guard's highest byte: where an overflow first lands.
fn top_of_guard(guard: std::ops::Range<usize>) -> usize {
    guard.end - 1
}

/// Overflows a fiber named `name` on `stack` (a write to its guard's top).
fn fault_in_guard(stack: Stack, name: Option<&str>) {
    fault_in_fiber(stack, name, top_of_guard);
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn guard_hit_is_reported_with_name() {
    if is_child("named") {
        let stack = Stack::new(64 * 1024).unwrap();
        fault_in_guard(stack, Some("deep"));
        return;
    }
    let out = run_child(
        "stack::overflow::tests::guard_hit_is_reported_with_name",
        "named",
    );
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fiber 'deep' overflowed its 64 KiB stack\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn guard_hit_of_unnamed_fiber() {
    if is_child("unnamed") {
        let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
        fault_in_guard(stack, None);
        return;
    }
    let out = run_child(
        "stack::overflow::tests::guard_hit_of_unnamed_fiber",
        "unnamed",
    );
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fiber '<unnamed>' overflowed its 256 KiB stack\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn guard_hit_with_mprotect_guard() {
    if is_child("mprotect") {
        let stack = Stack::with_guard(32 * 1024, GuardKind::Mprotect).unwrap();
        fault_in_guard(stack, Some("fallback"));
        return;
    }
    let out = run_child(
        "stack::overflow::tests::guard_hit_with_mprotect_guard",
        "mprotect",
    );
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fiber 'fallback' overflowed its 32 KiB stack\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn long_name_is_cut() {
    if is_child("long") {
        let name = "x".repeat(1000);
        let stack = Stack::new(64 * 1024).unwrap();
        fault_in_guard(stack, Some(&name));
        return;
    }
    let out = run_child("stack::overflow::tests::long_name_is_cut", "long");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{}", stderr(&out));
    let want = format!(
        "fiber '{}...' overflowed its 64 KiB stack\n",
        "x".repeat(256)
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
}

#[test]
fn fault_outside_the_guard_is_passed_on() {
    if is_child("outside") {
        let stack = Stack::new(64 * 1024).unwrap();
        // Nothing is mapped at address 16.
        fault_in_fiber(stack, Some("deep"), |_| 16);
        return;
    }
    let out = run_child(
        "stack::overflow::tests::fault_outside_the_guard_is_passed_on",
        "outside",
    );
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{}", stderr(&out));
    assert!(!stderr(&out).contains("overflowed"), "{}", stderr(&out));
}

/// The handler's decision, without a signal: a guard address with the
/// stack pointer in the slot finds the live record; the stack pointer
/// elsewhere, an address outside the guard, or a retired record, nothing.
#[test]
fn only_a_live_record_with_the_stack_pointer_in_its_slot_is_reported() {
    ensure_installed();
    let stack = Stack::new(64 * 1024).unwrap();
    let guard = stack.guard();
    let base = stack.base() as usize;
    let name = String::from("probe");
    // SAFETY: the stack is ours and unused; the name outlives the record
    // (retired below).
    unsafe { FiberInfo::publish(base, Some(&name)) };
    let sp_inside = stack.limit() as usize + 64;
    let found = overflowed_fiber(guard.end - 1, sp_inside).expect("a live record");
    assert_eq!(
        (found.name_ptr, found.name_len),
        (name.as_ptr(), name.len())
    );
    assert_eq!(found.stack_size, 64 * 1024);
    let local = 0u8;
    let sp_elsewhere = &local as *const u8 as usize;
    assert!(overflowed_fiber(guard.end - 1, sp_elsewhere).is_none());
    assert!(
        overflowed_fiber(guard.end, sp_inside).is_none(),
        "not the guard"
    );
    assert!(overflowed_fiber(16, sp_inside).is_none(), "not a stack");
    // SAFETY: published above, on a stack we still own.
    unsafe { FiberInfo::retire(base) };
    assert!(
        overflowed_fiber(guard.end - 1, sp_inside).is_none(),
        "retired"
    );
}

/// With a guard of several pages, the handler takes any address in it
/// (not only the page below the limit) and reports the usable size.
#[test]
fn every_page_of_a_large_guard_is_reported() {
    ensure_installed();
    let stack = Stack::with_guard_pages(64 * 1024, 16).unwrap();
    let guard = stack.guard();
    let base = stack.base() as usize;
    // SAFETY: the stack is ours and unused; retired below.
    unsafe { FiberInfo::publish(base, None) };
    let sp_inside = stack.limit() as usize + 64;
    for addr in [guard.start, guard.start + guard.len() / 2, guard.end - 1] {
        let found = overflowed_fiber(addr, sp_inside).expect("in the guard");
        assert_eq!(found.stack_size, 64 * 1024, "{addr:#x}");
    }
    assert!(overflowed_fiber(guard.end, sp_inside).is_none());
    // SAFETY: published above, on a stack we still own.
    unsafe { FiberInfo::retire(base) };
}

#[test]
fn install_gives_thread_an_altstack() {
    std::thread::spawn(|| {
        ensure_installed();
        // SAFETY: a zeroed stack_t is valid to overwrite.
        let mut ss: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: queries this thread's alternate stack.
        assert_eq!(unsafe { libc::sigaltstack(std::ptr::null(), &mut ss) }, 0);
        assert_eq!(ss.ss_flags & libc::SS_DISABLE, 0);
        assert!(ss.ss_size >= 8192);
    })
    .join()
    .unwrap();
}
