//! x86_64 side of the switch; the assembly is `asm/x86_64.S`.

use core::arch::asm;
use core::mem::{offset_of, size_of};

/// A suspended context's saved registers, exactly as `asm/x86_64.S` pushes
/// them; its stack pointer points at the first field.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct SavedFrame {
    /// MXCSR in the low 32 bits, the x87 control word in bits 32-47.
    pub(crate) fp_control: u64,
    pub(crate) r15: usize,
    pub(crate) r14: usize,
    pub(crate) r13: usize,
    pub(crate) r12: usize,
    pub(crate) rbx: usize,
    pub(crate) rbp: usize,
    /// Where execution continues when the context is resumed.
    pub(crate) resume_address: usize,
}

// The offsets the assembly uses. Change both sides together.
const _: () = assert!(size_of::<SavedFrame>() == 64);
const _: () = assert!(offset_of!(SavedFrame, fp_control) == 0);
const _: () = assert!(offset_of!(SavedFrame, r15) == 8);
const _: () = assert!(offset_of!(SavedFrame, r12) == 32);
const _: () = assert!(offset_of!(SavedFrame, rbx) == 40);
const _: () = assert!(offset_of!(SavedFrame, rbp) == 48);
const _: () = assert!(offset_of!(SavedFrame, resume_address) == 56);

extern "C" {
    fn spindle_suspend();
    fn spindle_exit();
}

/// The first frame of a fresh stack: `spindle_fiber_start` finds the entry
/// function in rbx and its data in r12; rbp = 0 ends frame-pointer walks.
/// The floating-point control state is the creating thread's, as a new
/// thread would inherit it.
#[inline]
pub(crate) fn init_frame(entry: usize, data: usize, start: usize) -> SavedFrame {
    let mut fp_control: u64 = 0;
    // SAFETY: stmxcsr and fnstcw only store 4 and 2 bytes into the local.
    unsafe {
        asm!(
            "stmxcsr [{p}]",
            "fnstcw [{p} + 4]",
            p = in(reg) &mut fp_control as *mut u64,
            options(nostack, preserves_flags),
        );
    }
    SavedFrame {
        fp_control,
        r15: 0,
        r14: 0,
        r13: 0,
        r12: data,
        rbx: entry,
        rbp: 0,
        resume_address: start,
    }
}

/// Suspends the running fiber: switches back to its resumer, whose
/// `resume` returns `arg` and this fiber's stack pointer. Returns the word
/// sent by the next `resume` of this fiber.
///
/// Inlined so that the switch is entered with `jmp`, not `call`: see
/// "Return-address prediction" in `asm/x86_64.S`.
///
/// # Safety
///
/// Must run on a fiber's stack, and `link` must be that fiber's parent link
/// (so the fiber was entered through `resume`).
#[inline(always)]
pub(crate) unsafe fn suspend(arg: usize, link: *mut *mut u8) -> usize {
    let ret: usize;
    // SAFETY: the caller guarantees we run on a fiber resumed through
    // `link`. The pushed address is popped by spindle_resume before it jumps
    // back to label 2, so rsp is unchanged at the end of the block. All
    // callee-saved state is preserved by the assembly; the caller-saved
    // registers are declared clobbered by clobber_abi.
    unsafe {
        asm!(
            "lea rax, [rip + 2f]",
            "push rax",
            "jmp {suspend}",
            "2:",
            suspend = sym spindle_suspend,
            inlateout("rdi") arg => ret,
            in("rsi") link,
            clobber_abi("C"),
        );
    }
    ret
}

/// Leaves a finished fiber for good: its resumer's `resume` returns `arg`
/// and a null stack pointer.
///
/// # Safety
///
/// As for [`suspend`]; in addition nothing with a destructor may be left on
/// the fiber's stack, and `arg` must stay readable until the resumer has
/// read it (the stack stays mapped until the resumer drops it).
#[inline(always)]
pub(crate) unsafe fn exit(arg: usize, link: *mut *mut u8) -> ! {
    // SAFETY: see the caller's contract; spindle_exit never returns here.
    unsafe {
        asm!(
            "jmp {exit}",
            exit = sym spindle_exit,
            in("rdi") arg,
            in("rsi") link,
            options(noreturn),
        )
    }
}
