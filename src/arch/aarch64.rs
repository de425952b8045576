//! aarch64 side of the switch; the assembly is `asm/aarch64.S`.

use core::arch::asm;
use core::mem::{offset_of, size_of};

/// A suspended context's saved registers, exactly as `asm/aarch64.S` stores
/// them; its stack pointer points at the first field.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct SavedFrame {
    /// d8 to d15 (the low 64 bits of v8-v15), as raw bits.
    pub(crate) d: [u64; 8],
    /// x19 to x28.
    pub(crate) x19_x28: [usize; 10],
    /// The frame pointer.
    pub(crate) x29: usize,
    /// The link register: where execution continues when resumed.
    pub(crate) x30: usize,
}

// The offsets the assembly uses. Change both sides together.
const _: () = assert!(size_of::<SavedFrame>() == 160);
const _: () = assert!(offset_of!(SavedFrame, d) == 0);
const _: () = assert!(offset_of!(SavedFrame, x19_x28) == 64);
const _: () = assert!(offset_of!(SavedFrame, x29) == 144);
const _: () = assert!(offset_of!(SavedFrame, x30) == 152);

extern "C" {
    fn spindle_suspend();
    fn spindle_exit();
}

/// The first frame of a fresh stack: `spindle_fiber_start` finds the entry
/// function in x19 and its data in x20; x29 = 0 ends frame-pointer walks.
#[inline]
pub(crate) fn init_frame(entry: usize, data: usize, start: usize) -> SavedFrame {
    let mut x19_x28 = [0; 10];
    x19_x28[0] = entry;
    x19_x28[1] = data;
    SavedFrame {
        d: [0; 8],
        x19_x28,
        x29: 0,
        x30: start,
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
    // `link`; the assembly preserves all callee-saved state and sp; x30 and
    // the other caller-saved registers are declared clobbered.
    unsafe {
        asm!(
            "adr x30, 2f",
            "b {suspend}",
            "2:",
            suspend = sym spindle_suspend,
            inlateout("x0") arg => ret,
            in("x1") link,
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
