//! Tests of the overflow handler that need no coroutine: they make a
//! [`FiberInfo`] for a real [`Stack`] current by hand, then touch its guard
//! from the thread's own stack. Each crash runs in a child process (this
//! test binary, re-run on one test).

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use super::{ensure_installed, swap_current, FiberInfo};
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

/// Makes a record for `stack` named `name` current, then writes one byte
/// into its guard. Returns only if the write did not fault.
fn fault_in_guard(stack: &Stack, name: Option<&str>) {
    ensure_installed();
    let info = FiberInfo {
        guard_start: stack.guard().start,
        guard_end: stack.guard().end,
        stack_size: stack.size(),
        name_ptr: name.map_or(std::ptr::null(), str::as_ptr),
        name_len: name.map_or(0, str::len),
    };
    let prev = swap_current(&info);
    // SAFETY: deliberately faults (the guard is inaccessible); the handler
    // aborts the process before this returns.
    unsafe { std::ptr::write_volatile((stack.guard().end - 1) as *mut u8, 1) };
    swap_current(prev);
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn guard_hit_is_reported_with_name() {
    if is_child("named") {
        let stack = Stack::new(64 * 1024).unwrap();
        fault_in_guard(&stack, Some("deep"));
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
        fault_in_guard(&stack, None);
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
        fault_in_guard(&stack, Some("fallback"));
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
        fault_in_guard(&stack, Some(&name));
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
        ensure_installed();
        let info = FiberInfo {
            guard_start: stack.guard().start,
            guard_end: stack.guard().end,
            stack_size: stack.size(),
            name_ptr: "deep".as_ptr(),
            name_len: 4,
        };
        swap_current(&info);
        // SAFETY: deliberately faults: nothing is mapped at address 16.
        unsafe { std::ptr::write_volatile(std::hint::black_box(16usize) as *mut u8, 1) };
        return;
    }
    let out = run_child(
        "stack::overflow::tests::fault_outside_the_guard_is_passed_on",
        "outside",
    );
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{}", stderr(&out));
    assert!(!stderr(&out).contains("overflowed"), "{}", stderr(&out));
}

#[test]
fn swap_current_returns_previous() {
    let a = FiberInfo {
        guard_start: 1,
        guard_end: 2,
        stack_size: 3,
        name_ptr: std::ptr::null(),
        name_len: 0,
    };
    let old = swap_current(&a);
    assert!(old.is_null());
    assert_eq!(swap_current(old), &a as *const FiberInfo);
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
