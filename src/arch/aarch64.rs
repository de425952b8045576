//! aarch64 side of the switch; the assembly is `asm/aarch64.S`.

use core::arch::asm;
use core::mem::{offset_of, size_of};

use super::Transfer;

/// The frame every switched-out context leaves at its stack pointer (see
/// "The saved frame" in `asm/aarch64.S`): pushed by `spindle_resume` on the
/// resumer's stack and by `spindle_suspend` on the fiber's, or written by
/// `init_stack` for a fresh stack.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct SavedFrame {
    pub(crate) x19: usize,
    /// With the `fp-env` feature, FPCR; without it, a spare word the switch
    /// never reads (it keeps the frame 16-byte aligned and one layout).
    pub(crate) fpcr: usize,
    /// The frame pointer.
    pub(crate) x29: usize,
    /// Where execution continues when the context is switched back to.
    pub(crate) x30: usize,
}

// The offsets the assembly uses. Change both sides together.
const _: () = assert!(size_of::<SavedFrame>() == 32);
const _: () = assert!(offset_of!(SavedFrame, x19) == 0);
const _: () = assert!(offset_of!(SavedFrame, fpcr) == 8);
const _: () = assert!(offset_of!(SavedFrame, x29) == 16);
const _: () = assert!(offset_of!(SavedFrame, x30) == 24);

extern "C" {
    fn spindle_resume();
    fn spindle_suspend();
    fn spindle_exit();
}

/// The first frame of a fresh stack: `spindle_fiber_start` finds the entry
/// function in x19 and its data in x29. FPCR 0 is the default (round to
/// nearest, no flush-to-zero, no traps); with `fp-env` the first resume
/// loads it, and `spindle_fiber_start` replaces it with the resumer's.
#[inline]
pub(crate) fn init_frame(entry: usize, data: usize, start: usize) -> SavedFrame {
    SavedFrame {
        x19: entry,
        fpcr: 0,
        x29: data,
        x30: start,
    }
}

/// Switches into the fiber whose saved stack pointer is `sp`; see the
/// x86_64 version. Entered with `bl` from an asm block that declares
/// x20-x28 and v8-v15 clobbered.
///
/// # Safety
///
/// `sp` must be a saved stack pointer that has not been switched to since it
/// was saved (or the result of `init_stack`, resumed at most once), `link`
/// that fiber's parent link, and the fiber's stack must stay mapped.
#[inline(always)]
pub(crate) unsafe fn resume(arg: usize, sp: *mut u8, link: *mut *mut u8) -> Transfer {
    let (word, new_sp): (usize, *mut u8);
    // SAFETY: the caller guarantees that `sp` is a saved frame of a fiber
    // whose parent link is `link`, on a stack that stays mapped.
    // spindle_resume returns to the instruction after the `bl` with sp as
    // it was and x19, x29 preserved; every other register it may change is
    // an output or declared clobbered (x30 by the `bl` itself).
    unsafe {
        asm!(
            "bl {resume}",
            resume = sym spindle_resume,
            inlateout("x0") arg => word,
            inlateout("x1") sp => new_sp,
            in("x2") link,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            lateout("x30") _,
            clobber_abi("C"),
        );
    }
    Transfer {
        arg: word,
        sp: new_sp,
    }
}

/// Suspends the running fiber; see the x86_64 version. Entered with `b`
/// after putting the resume address in x30 by hand, so the return predictor
/// is not touched.
///
/// # Safety
///
/// Must run on a fiber's stack, and `link` must be that fiber's parent link.
#[inline(always)]
pub(crate) unsafe fn suspend(arg: usize, link: *mut *mut u8) -> usize {
    let ret: usize;
    // SAFETY: the caller guarantees we run on a fiber resumed through
    // `link`; the assembly preserves x19, x29 and sp; x20-x28, v8-v15, x30
    // and the caller-saved registers are declared clobbered, so the compiler
    // saves whatever it keeps in them (see asm/aarch64.S).
    unsafe {
        asm!(
            "adr x30, 2f",
            "b {suspend}",
            "2:",
            suspend = sym spindle_suspend,
            inlateout("x0") arg => ret,
            in("x1") link,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            clobber_abi("C"),
        );
    }
    ret
}

/// Leaves a finished fiber for good; see the x86_64 version.
///
/// # Safety
///
/// As for [`suspend`]; nothing with a destructor may be left on the stack.
#[inline(always)]
pub(crate) unsafe fn exit(arg: usize, link: *mut *mut u8) -> ! {
    // SAFETY: see the caller's contract; spindle_exit never returns here.
    unsafe {
        asm!(
            "b {exit}",
            exit = sym spindle_exit,
            in("x0") arg,
            in("x1") link,
            options(noreturn),
        )
    }
}
