//! x86_64 side of the switch; the assembly is `asm/x86_64.S`.

use core::arch::asm;
use core::mem::{offset_of, size_of};

/// The frame `spindle_resume` pushes on the resumer's stack (see "Two kinds
/// of saved frame" in `asm/x86_64.S`). Never built in Rust: it mirrors the
/// assembly so the offsets below, which the trampoline's CFI also uses, are
/// checked.
#[repr(C)]
#[allow(dead_code)]
pub(crate) struct ResumerFrame {
    /// MXCSR in the low 32 bits, the x87 control word in bits 32-47.
    pub(crate) fp_control: u64,
    pub(crate) r15: usize,
    pub(crate) r14: usize,
    pub(crate) r13: usize,
    pub(crate) r12: usize,
    pub(crate) rbx: usize,
    pub(crate) rbp: usize,
    /// Pushed by the resumer's `call spindle_resume`.
    pub(crate) return_address: usize,
}

/// The frame a suspended fiber's stack pointer points at: pushed by
/// `spindle_suspend`, or written by `init_stack` for a fresh stack.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct FiberFrame {
    /// MXCSR in the low 32 bits, the x87 control word in bits 32-47.
    pub(crate) fp_control: u64,
    pub(crate) rbx: usize,
    pub(crate) rbp: usize,
    /// Where execution continues when the fiber is resumed.
    pub(crate) resume_address: usize,
}

// The offsets the assembly uses. Change both sides together.
const _: () = assert!(size_of::<ResumerFrame>() == 64);
const _: () = assert!(offset_of!(ResumerFrame, fp_control) == 0);
const _: () = assert!(offset_of!(ResumerFrame, r15) == 8);
const _: () = assert!(offset_of!(ResumerFrame, r14) == 16);
const _: () = assert!(offset_of!(ResumerFrame, r13) == 24);
const _: () = assert!(offset_of!(ResumerFrame, r12) == 32);
const _: () = assert!(offset_of!(ResumerFrame, rbx) == 40);
const _: () = assert!(offset_of!(ResumerFrame, rbp) == 48);
const _: () = assert!(offset_of!(ResumerFrame, return_address) == 56);
const _: () = assert!(size_of::<FiberFrame>() == 32);
const _: () = assert!(offset_of!(FiberFrame, fp_control) == 0);
const _: () = assert!(offset_of!(FiberFrame, rbx) == 8);
const _: () = assert!(offset_of!(FiberFrame, rbp) == 16);
const _: () = assert!(offset_of!(FiberFrame, resume_address) == 24);

extern "C" {
    fn spindle_suspend();
    fn spindle_exit();
}

/// The first frame of a fresh stack: `spindle_fiber_start` finds the entry
/// function in rbx and its data in rbp. The floating-point control state is
/// the creating thread's, as a new thread would inherit it.
#[inline]
pub(crate) fn init_frame(entry: usize, data: usize, start: usize) -> FiberFrame {
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
    FiberFrame {
        fp_control,
        rbx: entry,
        rbp: data,
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
    // back to label 2, so rsp is unchanged at the end of the block. The
    // assembly preserves rbx, rbp and the FP control state; r12-r15 and the
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
