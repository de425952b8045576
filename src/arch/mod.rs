//! The context switch: the thin Rust side of `asm/<arch>.S`.
//!
//! Everything above this module sees four operations and never touches a
//! register or a stack pointer itself:
//!
//! | operation | who calls it | what happens |
//! |---|---|---|
//! | [`init_stack`] | the coroutine, once | writes a fresh stack's first saved frame |
//! | [`resume`] | the resumer | saves it, runs the fiber until it suspends or exits |
//! | [`suspend`] | the running fiber | saves it, returns from the resumer's [`resume`] |
//! | [`exit`] | the finished fiber | returns from [`resume`] for the last time |
//!
//! A word (`usize`) travels with each switch; the coroutine layer uses it as a
//! pointer to the message being sent, which stays on the sender's stack until
//! the receiver has moved it out.
//!
//! The assembly files hold the full story of the frame layout, the parent
//! link, unwinding (CFI) and return-address prediction; `x86_64.rs` and
//! `aarch64.rs` mirror the saved frame (the same for resumers and suspended
//! fibers) as a `#[repr(C)]` struct whose size and offsets are checked at
//! compile time, so Rust and assembly cannot drift.
//!
//! ## Invariants
//!
//! - A saved stack pointer always points at a complete saved frame, 8-byte
//!   aligned (16 on aarch64): a suspended fiber's, or (in a parent link) its
//!   resumer's. It is valid until the context is switched back to once.
//! - [`resume`] and [`suspend`] are inline `asm!` blocks that enter the
//!   assembly. The assembly preserves only what no `asm!` block can declare
//!   clobbered (the frame pointer and its neighbour, plus the FP control
//!   state with the `fp-env` feature); the blocks declare every other
//!   register clobbered, so the compiler saves the callee-saved ones that
//!   hold live values. Between them, every register the ABI says a call
//!   preserves survives a switch.
//!
//! ## The floating-point environment
//!
//! By default a switch does not save or load the floating-point control
//! state (MXCSR and the x87 control word on x86_64, FPCR on aarch64). Rust
//! assumes the default environment: since Rust 1.75 the documentation of
//! `core::arch::x86_64::_mm_setcsr` says that changing the rounding mode,
//! exception masks or denormal flushing is undefined behaviour. A switch
//! happens only inside a Rust call ([`resume`], [`suspend`]), where a sound
//! program runs in that default environment on both sides, so there is
//! nothing to keep. corosensei, wasmtime's fibers and Go's scheduler make
//! the same choice. The `fp-env` cargo feature assembles the switch with
//! `SPINDLE_FP_ENV`, which saves and loads that state in the frame's spare
//! word, and makes a new fiber start with its first resumer's: for programs
//! whose C code changes the environment and switches fibers while it is
//! changed. On the AMD EPYC measured it makes a round trip about 3.6
//! times slower (6.8 ns instead of 1.9 ns: `stmxcsr` is microcoded there;
//! `BENCHMARKS.md` has the figures).
//! - The parent link of a running fiber holds the saved stack pointer of
//!   whoever resumed it last. Only [`resume`] writes it.
//! - Control never unwinds through any of these functions: panics are caught
//!   at the fiber's root (the coroutine layer), above [`exit`].

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::{exit, init_frame, resume, suspend, SavedFrame};
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{exit, init_frame, resume, suspend, SavedFrame};

#[cfg(test)]
mod tests;

/// What [`resume`] returns: the word the fiber sent, and its new saved stack
/// pointer (null when the fiber finished through [`exit`]).
///
/// Two machine words, returned in `rax:rdx` (x86_64) or `x0:x1` (aarch64).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    pub(crate) arg: usize,
    pub(crate) sp: *mut u8,
}

/// The entry point of a fiber: called once, on the fiber's stack, with the
/// first resume's word, the address of the parent link and the `data` given
/// to [`init_stack`]. It must leave through [`exit`].
pub(crate) type EntryFn = unsafe extern "C" fn(arg: usize, link: *mut *mut u8, data: *mut u8) -> !;

extern "C" {
    /// Never called from Rust: its address is the resume address of a fresh
    /// stack.
    fn spindle_fiber_start();
}

/// Stack space [`init_stack`] uses below the link: the first saved frame.
pub(crate) const INIT_FRAME_SIZE: usize = core::mem::size_of::<SavedFrame>();

/// Writes the first saved frame of a fresh stack and returns the stack
/// pointer to pass to the first [`resume`].
///
/// `link` is the parent link: a 16-byte-aligned word near the top of the
/// stack, with at least 8 writable bytes above it and [`INIT_FRAME_SIZE`]
/// below it. The first resume starts `entry(arg, link, data)` on this stack.
///
/// # Safety
///
/// `link` must satisfy the above, lie inside a stack that stays mapped until
/// the fiber exits, and nothing else may use that stack meanwhile.
pub(crate) unsafe fn init_stack(link: *mut *mut u8, entry: EntryFn, data: *mut u8) -> *mut u8 {
    debug_assert_eq!(link as usize % 16, 0);
    let frame = init_frame(
        entry as *const () as usize,
        data as usize,
        spindle_fiber_start as *const () as usize,
    );
    // SAFETY: the caller guarantees INIT_FRAME_SIZE writable bytes below the
    // link, which is 16-byte aligned, so the frame (a multiple of 8 bytes)
    // is 8-byte aligned, as it needs.
    unsafe {
        link.write(core::ptr::null_mut());
        let sp = (link as *mut u8).sub(INIT_FRAME_SIZE) as *mut SavedFrame;
        sp.write(frame);
        sp as *mut u8
    }
}

/// Asks the CPU to start loading the cache line at `addr` (a saved frame
/// about to be switched to). Only a hint: it never faults, whatever the
/// address, and changes nothing the program can observe.
#[inline(always)]
pub(crate) fn prefetch(addr: *const u8) {
    // SAFETY: a prefetch reads nothing the program sees and cannot fault,
    // even on an unmapped address; it touches no register but its operand.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("prefetcht0 [{}]", in(reg) addr, options(nostack, readonly, preserves_flags));
    }
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("prfm pldl1keep, [{}]", in(reg) addr, options(nostack, readonly, preserves_flags));
    }
}
