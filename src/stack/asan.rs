//! AddressSanitizer annotations: which stack the thread runs on after each
//! fiber switch, and clean shadow memory for every stack handed out.
//!
//! Compiled in exactly when the build is instrumented by ASan
//! (`-Zsanitizer=address`): the build script sees rustc's
//! `sanitize = "address"` configuration and sets `cfg(spindle_asan)`. The
//! cargo feature `asan` only insists on it (a build with the feature and
//! without the sanitizer fails with a message saying so).
//!
//! ## Why ASan needs to be told
//!
//! ASan keeps, per thread, the bounds of the stack it believes the thread
//! runs on. It uses them when a `noreturn` call (a panic's unwind, a
//! `longjmp`) makes it unpoison "the rest of the stack", and to describe
//! stack addresses in its reports. A context switch it does not know about
//! leaves those bounds pointing at the old stack: ASan warns that it ignores
//! `__asan_handle_no_return` and then reports false errors. ASan also poisons
//! the redzones around each instrumented frame's locals on entry and clears
//! them on return; a fiber that finishes by switching away never returns
//! from its outer frames, so their poison stays in the stack's shadow and
//! would trip the stack's next user.
//!
//! ## The protocol (from ASan's `common_interface_defs.h`)
//!
//! - Before a switch: [`Switch::start`] with the bounds of the stack being
//!   switched *to*. ASan saves the departing context's fake stack (its
//!   heap-allocated frames for use-after-return detection) in the `Switch`.
//! - After the switch, on the new stack: [`Switch::finish`] on the `Switch`
//!   this context saved when it left; it gives the bounds of the stack that
//!   was left.
//! - A new fiber has no saved `Switch`: it calls [`enter_new_fiber`] first.
//! - A finished fiber leaves for good with [`leave_for_good`], which frees its
//!   fake stack.
//!
//! Both sides of a coroutine learn the other's stack from `finish`: the
//! resumer remembers where the fiber's saved context lives (a suspension from
//! inside a nested coroutine leaves it on *that* coroutine's stack), and the
//! fiber remembers its resumer's.
//!
//! ## Cost
//!
//! Two calls into the ASan runtime per switch, and an unpoison of the usable
//! range (a `memset` of its shadow, one eighth of its size) when a stack is
//! handed out and when it is dropped. Only ASan builds pay it.

use std::ffi::c_void;
use std::ptr;

extern "C" {
    fn __sanitizer_start_switch_fiber(
        fake_stack_save: *mut *mut c_void,
        bottom: *const c_void,
        size: usize,
    );
    fn __sanitizer_finish_switch_fiber(
        fake_stack_save: *mut c_void,
        bottom_old: *mut *const c_void,
        size_old: *mut usize,
    );
    fn __asan_unpoison_memory_region(addr: *const c_void, size: usize);
}

/// A stack as ASan sees it: its lowest usable address and its size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StackBounds {
    bottom: *const c_void,
    size: usize,
}

impl StackBounds {
    /// The stack `limit .. limit + size`.
    pub(crate) fn new(limit: *mut u8, size: usize) -> StackBounds {
        StackBounds {
            bottom: limit as *const c_void,
            size,
        }
    }
}

/// One context's side of a switch: holds its fake stack while it is away.
/// Must stay in place (a local of the switching function) from
/// [`start`](Switch::start) to [`finish`](Switch::finish).
#[derive(Debug)]
pub(crate) struct Switch {
    fake_stack: *mut c_void,
}

impl Switch {
    /// A switch that has not started.
    #[inline(always)]
    pub(crate) fn new() -> Switch {
        Switch {
            fake_stack: ptr::null_mut(),
        }
    }

    /// Announces a switch to a context running on `to`; call right before
    /// the switch.
    ///
    /// # Safety
    ///
    /// The switch must follow at once, and `to` must be the stack the
    /// switched-to context runs on.
    #[inline(always)]
    pub(crate) unsafe fn start(&mut self, to: StackBounds) {
        // SAFETY: forwarded from the caller; `self.fake_stack` is a valid
        // place for ASan to write the departing context's fake stack.
        unsafe { __sanitizer_start_switch_fiber(&mut self.fake_stack, to.bottom, to.size) }
    }

    /// Completes the switch back into this context; call right after the
    /// switch returns. Gives the stack that was just left.
    ///
    /// # Safety
    ///
    /// [`start`](Switch::start) must have been called on this `Switch`, and
    /// the context switched back to this one since.
    #[inline(always)]
    pub(crate) unsafe fn finish(&self) -> StackBounds {
        // SAFETY: forwarded from the caller.
        unsafe { finish(self.fake_stack) }
    }
}

/// # Safety
///
/// As [`Switch::finish`]; `fake_stack` is what `start` saved (null for a new
/// fiber).
#[inline(always)]
unsafe fn finish(fake_stack: *mut c_void) -> StackBounds {
    let mut left = StackBounds {
        bottom: ptr::null(),
        size: 0,
    };
    // SAFETY: forwarded from the caller; both out-pointers are valid.
    unsafe { __sanitizer_finish_switch_fiber(fake_stack, &mut left.bottom, &mut left.size) };
    left
}

/// Completes the first switch into a new fiber; call first thing on its
/// stack. Gives its resumer's stack.
///
/// # Safety
///
/// Only at the entry of a fiber, whose resumer called [`Switch::start`].
#[inline(always)]
pub(crate) unsafe fn enter_new_fiber() -> StackBounds {
    // SAFETY: forwarded from the caller; a new fiber has no fake stack.
    unsafe { finish(ptr::null_mut()) }
}

/// Announces the last switch out of a finished fiber, to a context running
/// on `to`; ASan frees the fiber's fake stack.
///
/// # Safety
///
/// The fiber's final switch must follow at once, and nothing may run on
/// its stack afterwards.
#[inline(always)]
pub(crate) unsafe fn leave_for_good(to: StackBounds) {
    // SAFETY: forwarded from the caller; a null save frees the fake stack.
    unsafe { __sanitizer_start_switch_fiber(ptr::null_mut(), to.bottom, to.size) }
}

/// Clears the shadow of `limit .. limit + size`: a stack handed out or given
/// back carries no poison from its last user's frames.
#[inline]
pub(super) fn unpoison(limit: *mut u8, size: usize) {
    // SAFETY: the range is one stack's usable memory, mapped and owned by
    // the caller; unpoisoning only changes ASan's shadow of it.
    unsafe { __asan_unpoison_memory_region(limit as *const c_void, size) }
}
