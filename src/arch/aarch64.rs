//! aarch64 side of the switch; the assembly is `asm/aarch64.S`.

use core::arch::asm;
use core::mem::{offset_of, size_of};

/// The frame `spindle_resume` pushes on the resumer's stack (see "The two
/// kinds of saved frame" in `asm/aarch64.S`). Never built in Rust: it
/// mirrors the assembly so the offsets below, which the trampoline's CFI also
/// uses, are checked.
#[repr(C)]
#[allow(dead_code)]
pub(crate) struct ResumerFrame {
    /// d8 to d15 (the low 64 bits of v8-v15), as raw bits.
    pub(crate) d8_d15: [u64; 8],
    /// x19 to x28.
    pub(crate) x19_x28: [usize; 10],
    /// The frame pointer.
    pub(crate) x29: usize,
    /// The resumer's return address.
    pub(crate) x30: usize,
}

/// The frame a suspended fiber's stack pointer points at: pushed by
/// `spindle_suspend`, or written by `init_stack` for a fresh stack.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct FiberFrame {
    pub(crate) x19: usize,
    pub(crate) unused: usize,
    /// The frame pointer.
    pub(crate) x29: usize,
    /// Where execution continues when the fiber is resumed.
    pub(crate) x30: usize,
}

// The offsets the assembly uses. Change both sides together.
const _: () = assert!(size_of::<ResumerFrame>() == 160);
const _: () = assert!(offset_of!(ResumerFrame, d8_d15) == 0);
const _: () = assert!(offset_of!(ResumerFrame, x19_x28) == 64);
const _: () = assert!(offset_of!(ResumerFrame, x29) == 144);
const _: () = assert!(offset_of!(ResumerFrame, x30) == 152);
const _: () = assert!(size_of::<FiberFrame>() == 32);
const _: () = assert!(offset_of!(FiberFrame, x19) == 0);
const _: () = assert!(offset_of!(FiberFrame, x29) == 16);
const _: () = assert!(offset_of!(FiberFrame, x30) == 24);

extern "C" {
    fn spindle_suspend();
    fn spindle_exit();
}

/// The first frame of a fresh stack: `spindle_fiber_start` finds the entry
/// function in x19 and its data in x29.
#[inline]
pub(crate) fn init_frame(entry: usize, data: usize, start: usize) -> FiberFrame {
    FiberFrame {
        x19: entry,
        unused: 0,
        x29: data,
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
