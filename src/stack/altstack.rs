//! This thread's alternate signal stack, for the overflow handler.
//!
//! A fiber that overflowed has no stack left to run a signal handler on, so
//! the handler is installed with `SA_ONSTACK` and every thread that runs
//! fibers needs an alternate signal stack (`sigaltstack(2)`).
//!
//! ## Invariants
//!
//! - A thread that already has one keeps it: Rust's runtime gives one to the
//!   main thread and to every thread it spawns (when its own handler is
//!   installed), and another library may have set one up.
//! - Otherwise the thread gets a [`Stack`] of [`size`] bytes, guard included,
//!   owned by the thread-local [`OWNED`]. At thread exit its destructor
//!   disables the alternate stack (if it is still ours) *before* the memory
//!   goes back, so no signal can land on freed memory.
//! - If no stack can be had (out of memory), the thread goes without: an
//!   overflow there is a bare `SIGSEGV` instead of a report, never worse.

use std::cell::RefCell;
use std::ptr;

use super::Stack;

/// This thread's alternate signal stack, when it is ours.
struct AltStack {
    stack: Stack,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: a zeroed stack_t is a valid value to overwrite.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: queries this thread's alternate stack into `current`.
        let r = unsafe { libc::sigaltstack(ptr::null(), &mut current) };
        if r == 0 && current.ss_sp == self.stack.limit().cast() {
            let disable = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disables the alternate stack we installed; we are not
            // running on it (thread-local destructors run on the thread's
            // own stack).
            unsafe { libc::sigaltstack(&disable, ptr::null_mut()) };
        }
        // `self.stack` is dropped after this: pooled or released.
    }
}

thread_local! {
    static OWNED: RefCell<Option<AltStack>> = const { RefCell::new(None) };
}

/// Bytes for an alternate signal stack: 64 KiB, or four times what the
/// kernel says a signal frame needs (`AT_MINSIGSTKSZ`: several KiB with
/// AVX-512 or SVE state) if that is more. Our handler needs well under a
/// page, but the handler we chain to (Rust's, or anyone's) may need more.
fn size() -> usize {
    // SAFETY: getauxval has no preconditions; it returns 0 if unknown.
    let min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    (64 * 1024).max(min.saturating_mul(4)).max(libc::SIGSTKSZ)
}

/// Makes sure this thread has an alternate signal stack.
pub(super) fn ensure() {
    // SAFETY: a zeroed stack_t is a valid value to overwrite.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: queries this thread's alternate stack into `current`.
    if unsafe { libc::sigaltstack(ptr::null(), &mut current) } != 0 {
        return;
    }
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return; // It has one: keep it.
    }
    let Ok(stack) = Stack::new(size()) else {
        return;
    };
    let new = libc::stack_t {
        ss_sp: stack.limit().cast(),
        ss_flags: 0,
        ss_size: stack.size(),
    };
    // SAFETY: `stack` is memory we own, and it is kept alive (in OWNED, or
    // leaked below) for as long as it is this thread's alternate stack.
    if unsafe { libc::sigaltstack(&new, ptr::null_mut()) } != 0 {
        return;
    }
    let mut leftover = Some(AltStack { stack });
    let _ = OWNED.try_with(|owned| {
        if let Ok(mut owned) = owned.try_borrow_mut() {
            *owned = leftover.take();
        }
    });
    // The thread is already tearing down its thread-locals: keep the signal
    // stack mapped for the rest of the thread's life rather than free
    // memory the kernel may still deliver signals onto.
    if let Some(alt) = leftover {
        std::mem::forget(alt);
    }
}
