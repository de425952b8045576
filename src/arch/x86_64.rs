//! x86_64 side of the switch; the assembly is `asm/x86_64.S`.

use core::arch::asm;
use core::mem::{offset_of, size_of};

use super::Transfer;

/// The frame every switched-out context leaves at its stack pointer (see
/// "The saved frame" in `asm/x86_64.S`): pushed by `spindle_resume` on the
/// resumer's stack and by `spindle_suspend` on the fiber's, or written by
/// `init_stack` for a fresh stack. Mirrored here so that the offsets below,
/// which the assembly and the trampoline's CFI also use, are checked.
///
/// 24 bytes by default, 32 with the `fp-env` feature, which adds the FP
/// control words below the rest.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct SavedFrame {
    /// MXCSR in the low 32 bits, the x87 control word in bits 32-47.
    #[cfg(feature = "fp-env")]
    pub(crate) fp_control: u64,
    pub(crate) rbx: usize,
    pub(crate) rbp: usize,
    /// Where execution continues when the context is switched back to: the
    /// return address of the resumer's `call`, or a fiber's resume address.
    pub(crate) resume_address: usize,
}

/// Bytes the FP control words take at the bottom of the frame.
const FP: usize = if cfg!(feature = "fp-env") { 8 } else { 0 };

// The offsets the assembly uses (FRAME_SIZE there). Change both sides
// together.
const _: () = assert!(size_of::<SavedFrame>() == 24 + FP);
#[cfg(feature = "fp-env")]
const _: () = assert!(offset_of!(SavedFrame, fp_control) == 0);
const _: () = assert!(offset_of!(SavedFrame, rbx) == FP);
const _: () = assert!(offset_of!(SavedFrame, rbp) == FP + 8);
const _: () = assert!(offset_of!(SavedFrame, resume_address) == FP + 16);

extern "C" {
    fn spindle_resume();
    fn spindle_suspend();
    fn spindle_exit();
}

/// The first frame of a fresh stack: `spindle_fiber_start` finds the entry
/// function in rbx and its data in rbp.
///
/// With `fp-env`, the floating-point control words here are the ABI's
/// defaults, only so that the first resume loads valid ones:
/// `spindle_fiber_start` then loads its first resumer's, so a new fiber
/// starts with the FP control state of whoever first resumes it (as a new
/// thread starts with its creator's). Reading the creator's here instead
/// would cost a `stmxcsr` per fiber, which is slow on some CPUs (see
/// "Floating-point control state" in `asm/x86_64.S`).
#[inline]
pub(crate) fn init_frame(entry: usize, data: usize, start: usize) -> SavedFrame {
    /// MXCSR: all exceptions masked, round to nearest; x87: the same, with
    /// 64-bit precision (the values a process starts with).
    #[cfg(feature = "fp-env")]
    const DEFAULT_FP_CONTROL: u64 = 0x1F80 | (0x037F << 32);
    SavedFrame {
        #[cfg(feature = "fp-env")]
        fp_control: DEFAULT_FP_CONTROL,
        rbx: entry,
        rbp: data,
        resume_address: start,
    }
}

/// Switches into the fiber whose saved stack pointer is `sp`, sending `arg`.
/// Returns when the fiber suspends (with its new stack pointer) or exits
/// (with a null one).
///
/// Inlined, and entered with `call` from an asm block that declares r12-r15
/// clobbered, so the compiler saves only the ones that hold live values:
/// see "Who saves what" in `asm/x86_64.S`.
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
    // whose parent link is `link`, on a stack that stays mapped. The block
    // is entered with the stack aligned for a call (it has no `nostack`;
    // the fiber side relies on nothing about it),
    // and spindle_resume returns to the instruction after the `call` with
    // rsp as it was, rbx and rbp preserved (and, with fp-env, the FP
    // control state; without it Rust code never changes that state); every
    // other register it may change is an output or declared clobbered.
    unsafe {
        asm!(
            "call {resume}",
            resume = sym spindle_resume,
            in("rdi") arg,
            in("rsi") sp,
            inlateout("rdx") link => new_sp,
            lateout("rax") word,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("C"),
        );
    }
    Transfer {
        arg: word,
        sp: new_sp,
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
    // back to label 2, so rsp is unchanged at the end of the block. The
    // assembly preserves rbx and rbp (and the FP control state with
    // fp-env); r12-r15 and the
    // caller-saved registers are declared clobbered, so the compiler saves
    // whatever it keeps in them (the split is explained in asm/x86_64.S).
    unsafe {
        asm!(
            "lea rax, [rip + 2f]",
            "push rax",
            "jmp {suspend}",
            "2:",
            suspend = sym spindle_suspend,
            inlateout("rdi") arg => ret,
            in("rsi") link,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
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
