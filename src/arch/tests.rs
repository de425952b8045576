//! Tests of the raw switch: callee-saved register integrity.
//!
//! Rust code cannot check this through the public API alone: any function
//! between the test and the switch saves and restores the registers it uses,
//! which would hide a switch that forgets one. So both sides here enter the
//! assembly from inline asm, with sentinel values in every callee-saved
//! register (and, on x86_64, non-default MXCSR and x87 control words) at the
//! moment of the switch, and check them right after it.

use super::*;
use crate::stack::Stack;
use core::arch::asm;

/// Sent to a fiber to make it exit.
const STOP: usize = usize::MAX;

/// A fiber that loops: set its sentinels (derived from `seed`), suspend
/// sending the result of its previous check, verify them when resumed.
unsafe extern "C" fn sentinel_fiber(mut arg: usize, link: *mut *mut u8, data: *mut u8) -> ! {
    let seed = data as usize;
    let mut last_ok = 1usize;
    while arg != STOP {
        // SAFETY: we run on the fiber that `link` belongs to.
        let (next, ok) = unsafe { switch_with_sentinels_fiber(last_ok, link, seed) };
        last_ok = ok;
        arg = next;
    }
    // SAFETY: nothing with a destructor is live on this stack.
    unsafe { exit(last_ok, link) }
}

/// Sets sentinels, suspends with `arg`, checks the sentinels when resumed.
/// Returns (the word the resumer sent, 1 if every register the fiber side
/// of the switch promises to keep was intact).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn switch_with_sentinels_fiber(
    arg: usize,
    link: *mut *mut u8,
    seed: usize,
) -> (usize, usize) {
    let (word, ok): (usize, usize);
    let mxcsr = 0x1F80u32 | ((seed as u32 & 3) << 13) | 0x8000; // rounding mode + FTZ
    let fpcw = 0x037Fu32 | ((seed as u32 & 3) << 10); // x87 rounding control
                                                      // SAFETY: rbx and rbp are saved and restored inside the block; every
                                                      // other register the block changes is declared; the stack is balanced.
    unsafe {
        asm!(
            "push rbx",
            "push rbp",
            "sub rsp, 32",
            "stmxcsr [rsp]",
            "fnstcw [rsp + 4]",
            "mov [rsp + 8], {seed}",
            "mov [rsp + 16], {mx:e}",
            "mov [rsp + 20], {cw:e}",
            "mov rbx, {seed}",
            "lea rbp, [rbx + 1]",
            "lea r12, [rbx + 2]",
            "lea r13, [rbx + 3]",
            "lea r14, [rbx + 4]",
            "lea r15, [rbx + 5]",
            "ldmxcsr [rsp + 16]",
            "fldcw [rsp + 20]",
            "lea rax, [rip + 2f]",
            "push rax",
            "jmp {suspend}",
            "2:",
            // r12-r15 are not checked: the fiber side declares them
            // clobbered (see asm/x86_64.S). Their sentinels still matter:
            // the resumer must not see them.
            "xor eax, eax",
            "cmp rbx, [rsp + 8]",
            "jne 3f",
            "lea rcx, [rbx + 1]",
            "cmp rbp, rcx",
            "jne 3f",
            "stmxcsr [rsp + 24]",
            "mov ecx, [rsp + 24]",
            "and ecx, 0xFFC0",
            "cmp ecx, [rsp + 16]",
            "jne 3f",
            "fnstcw [rsp + 28]",
            "movzx ecx, word ptr [rsp + 28]",
            "movzx edx, word ptr [rsp + 20]",
            "cmp ecx, edx",
            "jne 3f",
            "mov eax, 1",
            "3:",
            "ldmxcsr [rsp]",
            "fldcw [rsp + 4]",
            "add rsp, 32",
            "pop rbp",
            "pop rbx",
            seed = in(reg) seed,
            mx = in(reg) mxcsr,
            cw = in(reg) fpcw,
            suspend = sym spindle_suspend_for_tests,
            inlateout("rdi") arg => word,
            in("rsi") link,
            out("rax") ok,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("C"),
        );
    }
    (word, ok)
}

/// The resumer's half: sets its own sentinels, resumes the fiber at `sp`,
/// checks them when the fiber suspends. Returns (the Transfer, 1 if intact).
#[cfg(target_arch = "x86_64")]
unsafe fn resume_with_sentinels(
    arg: usize,
    sp: *mut u8,
    link: *mut *mut u8,
    seed: usize,
) -> (Transfer, usize) {
    let (word, new_sp, ok): (usize, *mut u8, usize);
    let mxcsr = 0x1F80u32 | (((seed as u32 + 1) & 3) << 13);
    let fpcw = 0x037Fu32 | (((seed as u32 + 1) & 3) << 10);
    // SAFETY: as in the fiber's half; `call` enters spindle_resume as the
    // C ABI expects (rsp is 16-byte aligned after the 48 bytes pushed).
    unsafe {
        asm!(
            "push rbx",
            "push rbp",
            "sub rsp, 32",
            "stmxcsr [rsp]",
            "fnstcw [rsp + 4]",
            "mov [rsp + 8], {seed}",
            "mov [rsp + 16], {mx:e}",
            "mov [rsp + 20], {cw:e}",
            "mov rbx, {seed}",
            "lea rbp, [rbx + 1]",
            "lea r12, [rbx + 2]",
            "lea r13, [rbx + 3]",
            "lea r14, [rbx + 4]",
            "lea r15, [rbx + 5]",
            "ldmxcsr [rsp + 16]",
            "fldcw [rsp + 20]",
            "call {resume}",
            "xor ecx, ecx",
            "cmp rbx, [rsp + 8]",
            "jne 3f",
            "lea r8, [rbx + 1]",
            "cmp rbp, r8",
            "jne 3f",
            "lea r8, [rbx + 2]",
            "cmp r12, r8",
            "jne 3f",
            "lea r8, [rbx + 3]",
            "cmp r13, r8",
            "jne 3f",
            "lea r8, [rbx + 4]",
            "cmp r14, r8",
            "jne 3f",
            "lea r8, [rbx + 5]",
            "cmp r15, r8",
            "jne 3f",
            "stmxcsr [rsp + 24]",
            "mov r8d, [rsp + 24]",
            "and r8d, 0xFFC0",
            "cmp r8d, [rsp + 16]",
            "jne 3f",
            "fnstcw [rsp + 28]",
            "movzx r8d, word ptr [rsp + 28]",
            "movzx r9d, word ptr [rsp + 20]",
            "cmp r8d, r9d",
            "jne 3f",
            "mov ecx, 1",
            "3:",
            "ldmxcsr [rsp]",
            "fldcw [rsp + 4]",
            "add rsp, 32",
            "pop rbp",
            "pop rbx",
            seed = in(reg) seed,
            mx = in(reg) mxcsr,
            cw = in(reg) fpcw,
            resume = sym spindle_resume,
            in("rdi") arg,
            in("rsi") sp,
            inlateout("rdx") link => new_sp,
            out("rax") word,
            out("rcx") ok,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("C"),
        );
    }
    (
        Transfer {
            arg: word,
            sp: new_sp,
        },
        ok,
    )
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn switch_with_sentinels_fiber(
    arg: usize,
    link: *mut *mut u8,
    seed: usize,
) -> (usize, usize) {
    let (word, ok): (usize, usize);
    // SAFETY: x19 and x29 (reserved by LLVM) are saved and restored inside
    // the block; every other register it changes is declared; sp is
    // balanced and stays 16-byte aligned.
    unsafe {
        asm!(
            "stp x19, x29, [sp, #-32]!",
            "str {seed}, [sp, #16]",
            "mov x19, {seed}",
            "add x20, x19, #1",
            "add x21, x19, #2",
            "add x22, x19, #3",
            "add x23, x19, #4",
            "add x24, x19, #5",
            "add x25, x19, #6",
            "add x26, x19, #7",
            "add x27, x19, #8",
            "add x28, x19, #9",
            "add x29, x19, #10",
            "add x9, x19, #11", "fmov d8, x9",
            "add x9, x19, #12", "fmov d9, x9",
            "add x9, x19, #13", "fmov d10, x9",
            "add x9, x19, #14", "fmov d11, x9",
            "add x9, x19, #15", "fmov d12, x9",
            "add x9, x19, #16", "fmov d13, x9",
            "add x9, x19, #17", "fmov d14, x9",
            "add x9, x19, #18", "fmov d15, x9",
            "adr x30, 2f",
            "b {suspend}",
            "2:",
            // Only x19 and x29 are checked: the fiber side declares the
            // others clobbered (see asm/aarch64.S). Their sentinels still
            // matter: the resumer must not see them.
            "mov x8, #0",
            "ldr x9, [sp, #16]",
            "cmp x19, x9", "b.ne 3f",
            "add x10, x9, #10", "cmp x29, x10", "b.ne 3f",
            "mov x8, #1",
            "3:",
            "ldp x19, x29, [sp], #32",
            seed = in(reg) seed,
            suspend = sym spindle_suspend_for_tests,
            inlateout("x0") arg => word,
            in("x1") link,
            out("x8") ok,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            clobber_abi("C"),
        );
    }
    (word, ok)
}

#[cfg(target_arch = "aarch64")]
unsafe fn resume_with_sentinels(
    arg: usize,
    sp: *mut u8,
    link: *mut *mut u8,
    seed: usize,
) -> (Transfer, usize) {
    let (word, new_sp, ok): (usize, *mut u8, usize);
    // SAFETY: as in the fiber's half; `bl` enters spindle_resume as the C
    // ABI expects.
    unsafe {
        asm!(
            "stp x19, x29, [sp, #-32]!",
            "str {seed}, [sp, #16]",
            "mov x19, {seed}",
            "add x20, x19, #1",
            "add x21, x19, #2",
            "add x22, x19, #3",
            "add x23, x19, #4",
            "add x24, x19, #5",
            "add x25, x19, #6",
            "add x26, x19, #7",
            "add x27, x19, #8",
            "add x28, x19, #9",
            "add x29, x19, #10",
            "add x9, x19, #11", "fmov d8, x9",
            "add x9, x19, #12", "fmov d9, x9",
            "add x9, x19, #13", "fmov d10, x9",
            "add x9, x19, #14", "fmov d11, x9",
            "add x9, x19, #15", "fmov d12, x9",
            "add x9, x19, #16", "fmov d13, x9",
            "add x9, x19, #17", "fmov d14, x9",
            "add x9, x19, #18", "fmov d15, x9",
            "bl {resume}",
            "mov x8, #0",
            "ldr x9, [sp, #16]",
            "cmp x19, x9", "b.ne 3f",
            "add x10, x9, #1", "cmp x20, x10", "b.ne 3f",
            "add x10, x9, #2", "cmp x21, x10", "b.ne 3f",
            "add x10, x9, #3", "cmp x22, x10", "b.ne 3f",
            "add x10, x9, #4", "cmp x23, x10", "b.ne 3f",
            "add x10, x9, #5", "cmp x24, x10", "b.ne 3f",
            "add x10, x9, #6", "cmp x25, x10", "b.ne 3f",
            "add x10, x9, #7", "cmp x26, x10", "b.ne 3f",
            "add x10, x9, #8", "cmp x27, x10", "b.ne 3f",
            "add x10, x9, #9", "cmp x28, x10", "b.ne 3f",
            "add x10, x9, #10", "cmp x29, x10", "b.ne 3f",
            "add x10, x9, #11", "fmov x11, d8", "cmp x11, x10", "b.ne 3f",
            "add x10, x9, #12", "fmov x11, d9", "cmp x11, x10", "b.ne 3f",
            "add x10, x9, #13", "fmov x11, d10", "cmp x11, x10", "b.ne 3f",
            "add x10, x9, #14", "fmov x11, d11", "cmp x11, x10", "b.ne 3f",
            "add x10, x9, #15", "fmov x11, d12", "cmp x11, x10", "b.ne 3f",
            "add x10, x9, #16", "fmov x11, d13", "cmp x11, x10", "b.ne 3f",
            "add x10, x9, #17", "fmov x11, d14", "cmp x11, x10", "b.ne 3f",
            "add x10, x9, #18", "fmov x11, d15", "cmp x11, x10", "b.ne 3f",
            "mov x8, #1",
            "3:",
            "ldp x19, x29, [sp], #32",
            seed = in(reg) seed,
            resume = sym spindle_resume,
            inlateout("x0") arg => word,
            inlateout("x1") sp => new_sp,
            in("x2") link,
            out("x8") ok,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            clobber_abi("C"),
        );
    }
    (
        Transfer {
            arg: word,
            sp: new_sp,
        },
        ok,
    )
}

extern "C" {
    #[link_name = "spindle_suspend"]
    fn spindle_suspend_for_tests();
}

/// A raw fiber: its stack, its parent link and its saved stack pointer.
struct RawFiber {
    _stack: Stack,
    link: *mut *mut u8,
    sp: *mut u8,
}

fn raw_fiber(seed: usize) -> RawFiber {
    let stack = Stack::new(64 * 1024).expect("stack");
    let link = ((stack.base() as usize - 32) & !15) as *mut *mut u8;
    // SAFETY: the link is 16-aligned with 24 bytes above it, and the stack
    // has room for the first frame; the stack outlives the fiber (it is
    // stopped before RawFiber is dropped).
    let sp = unsafe { init_stack(link, sentinel_fiber, seed as *mut u8) };
    RawFiber {
        _stack: stack,
        link,
        sp,
    }
}

/// Sentinels in every callee-saved register, on both sides, survive
/// 1,000,000 switches among several fibers (500,000 round trips).
#[test]
fn callee_saved_registers_survive_a_million_switches() {
    const FIBERS: usize = 4;
    const ROUND_TRIPS: usize = 500_000;
    let mut fibers: Vec<RawFiber> = (0..FIBERS)
        .map(|i| raw_fiber(0x5EED_0000 + i * 0x100))
        .collect();
    let (mut parent_failures, mut fiber_failures) = (0usize, 0usize);
    for round in 0..ROUND_TRIPS {
        let f = &mut fibers[round % FIBERS];
        let seed = 0xA000_0000 + round % 7 * 0x40;
        // SAFETY: f.sp is the fiber's current saved stack pointer.
        let (t, ok) = unsafe { resume_with_sentinels(round, f.sp, f.link, seed) };
        assert!(!t.sp.is_null(), "the fiber exited early");
        f.sp = t.sp;
        parent_failures += 1 - ok;
        // The fiber reports its previous check (its first report is a 1).
        fiber_failures += 1 - t.arg;
    }
    for f in &mut fibers {
        // SAFETY: as above; the fiber exits on STOP.
        let t = unsafe { resume(STOP, f.sp, f.link) };
        assert!(t.sp.is_null(), "the fiber did not exit on STOP");
        fiber_failures += 1 - t.arg;
    }
    assert_eq!(parent_failures, 0, "resumer registers corrupted");
    assert_eq!(fiber_failures, 0, "fiber registers corrupted");
}
