//! Tests of the raw switch: callee-saved register integrity.
//!
//! Rust code cannot check this through the public API alone: any function
//! between the test and the switch saves and restores the registers it uses,
//! which would hide a switch that forgets one. So both sides of the first
//! test enter the assembly from inline asm, with sentinel values in every
//! callee-saved register (and, with the `fp-env` feature, non-default MXCSR
//! and x87 control words, or FPCR) at the moment of the switch, and check
//! right after it the ones the assembly promises to keep. Without `fp-env`
//! both sides keep the default FP control words, which the switch then
//! leaves alone (`the_default_switch_leaves_the_fp_control_state_alone`). The others (r12-r15; x20-x28 and d8-d15) are
//! declared clobbered by both sides' asm blocks, so keeping them is the
//! compiler's job: the second test checks that, with values live across
//! real `resume` and `suspend` calls on both sides.

use super::*;
use crate::stack::Stack;
use core::arch::asm;

/// Sent to a fiber to make it exit.
const STOP: usize = usize::MAX;

/// Whether the switch keeps the floating-point control state (the `fp-env`
/// feature): only then may the sentinels include non-default FP words.
const FP_ENV: bool = cfg!(feature = "fp-env");

/// The x86_64 sentinels' MXCSR and x87 control word for `seed`: a rounding
/// mode (and FTZ on the fiber's side) with `fp-env`, the defaults without.
#[cfg(target_arch = "x86_64")]
fn fp_sentinels(seed: usize, ftz: bool) -> (u32, u32) {
    if !FP_ENV {
        return (0x1F80, 0x037F);
    }
    let mxcsr = 0x1F80u32 | ((seed as u32 & 3) << 13) | if ftz { 0x8000 } else { 0 };
    let fpcw = 0x037Fu32 | ((seed as u32 & 3) << 10); // x87 rounding control
    (mxcsr, fpcw)
}

/// The aarch64 sentinel FPCR for `seed`: a rounding mode (bits 22-23) and
/// FZ (bit 24) with `fp-env`, the default 0 without.
#[cfg(target_arch = "aarch64")]
fn fpcr_sentinel(seed: usize) -> usize {
    if FP_ENV {
        ((seed & 3) << 22) | (1 << 24)
    } else {
        0
    }
}

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
    let (mxcsr, fpcw) = fp_sentinels(seed, true);
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
    let (mxcsr, fpcw) = fp_sentinels(seed + 1, false);
    // SAFETY: as in the fiber's half; `call` enters spindle_resume as the
    // Rust side's block does (the block is entered aligned for a call and
    // pushes 48 bytes, so rsp is 16-byte aligned at the `call`).
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
            // r12-r15 are not checked: like the fiber side, the resumer
            // side declares them clobbered and the compiler keeps them
            // (see `live_values_survive_switches_on_both_sides`).
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
            resume = sym spindle_resume_for_tests,
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
    let fpcr = fpcr_sentinel(seed);
    // SAFETY: x19 and x29 (reserved by LLVM) are saved and restored inside
    // the block, and FPCR too; every other register it changes is declared;
    // sp is balanced and stays 16-byte aligned.
    unsafe {
        asm!(
            "stp x19, x29, [sp, #-48]!",
            "str {seed}, [sp, #16]",
            "str {fpcr}, [sp, #24]",
            "mov x19, {seed}",
            // Both inputs are stored (either may sit in x9): now x9 is free.
            "mrs x9, fpcr",
            "str x9, [sp, #32]",
            "ldr x9, [sp, #24]",
            "msr fpcr, x9",
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
            "mrs x10, fpcr", "ldr x9, [sp, #24]", "cmp x10, x9", "b.ne 3f",
            "mov x8, #1",
            "3:",
            "ldr x9, [sp, #32]",
            "msr fpcr, x9",
            "ldp x19, x29, [sp], #48",
            seed = in(reg) seed,
            fpcr = in(reg) fpcr,
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
    let fpcr = fpcr_sentinel(seed + 1);
    // SAFETY: as in the fiber's half; `bl` enters spindle_resume with sp
    // 16-byte aligned, as the assembly expects.
    unsafe {
        asm!(
            "stp x19, x29, [sp, #-48]!",
            "str {seed}, [sp, #16]",
            "str {fpcr}, [sp, #24]",
            "mov x19, {seed}",
            // Both inputs are stored (either may sit in x9): now x9 is free.
            "mrs x9, fpcr",
            "str x9, [sp, #32]",
            "ldr x9, [sp, #24]",
            "msr fpcr, x9",
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
            // Only x19 and x29 are checked, as on the fiber side: the
            // others are declared clobbered and kept by the compiler.
            "add x10, x9, #10", "cmp x29, x10", "b.ne 3f",
            "mrs x10, fpcr", "ldr x9, [sp, #24]", "cmp x10, x9", "b.ne 3f",
            "mov x8, #1",
            "3:",
            "ldr x9, [sp, #32]",
            "msr fpcr, x9",
            "ldp x19, x29, [sp], #48",
            seed = in(reg) seed,
            fpcr = in(reg) fpcr,
            resume = sym spindle_resume_for_tests,
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
    #[link_name = "spindle_resume"]
    fn spindle_resume_for_tests();
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

/// Writes garbage into every callee-saved register that the switch's asm
/// blocks declare clobbered (declaring them clobbered here too), so that a
/// side that forgot to declare one would lose whatever the compiler kept
/// there.
#[inline(always)]
fn trash_clobbered_registers() {
    // SAFETY: only writes registers that are declared clobbered.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        asm!(
            "mov r12, -1", "mov r13, -2", "mov r14, -3", "mov r15, -4",
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            options(nostack, nomem, preserves_flags),
        );
    }
    // SAFETY: only writes registers that are declared clobbered.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        asm!(
            "mov x20, #-1", "mov x21, #-2", "mov x22, #-3", "mov x23, #-4",
            "mov x24, #-5", "mov x25, #-6", "mov x26, #-7", "mov x27, #-8",
            "mov x28, #-9",
            "movi v8.2d, #0", "movi v9.2d, #0", "movi v10.2d, #0", "movi v11.2d, #0",
            "movi v12.2d, #0", "movi v13.2d, #0", "movi v14.2d, #0", "movi v15.2d, #0",
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            options(nostack, nomem, preserves_flags),
        );
    }
}

/// Keeps scalars (integers and floats) live across each of `rounds` calls
/// of `switch`, more of them than there are callee-saved registers, with
/// running sums that show at the end whether any was ever lost. Returns
/// whether every sum came out right.
#[inline(always)]
fn keep_live_values(seed: u64, rounds: usize, mut switch: impl FnMut()) -> bool {
    let k = std::hint::black_box([seed, seed ^ 1, seed ^ 2, seed ^ 3, seed ^ 4, seed ^ 5]);
    let (k0, k1, k2, k3, k4, k5) = (k[0], k[1], k[2], k[3], k[4], k[5]);
    let g = std::hint::black_box([0.5f64, 1.5, 2.5, 3.5]);
    let (g0, g1, g2, g3) = (g[0], g[1], g[2], g[3]);
    let (mut a0, mut a1, mut a2, mut a3, mut a4, mut a5) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut f0, mut f1, mut f2, mut f3) = (0f64, 0f64, 0f64, 0f64);
    for _ in 0..rounds {
        switch();
        a0 = a0.wrapping_add(k0);
        a1 = a1.wrapping_add(k1);
        a2 = a2.wrapping_add(k2);
        a3 = a3.wrapping_add(k3);
        a4 = a4.wrapping_add(k4);
        a5 = a5.wrapping_add(k5);
        f0 += g0;
        f1 += g1;
        f2 += g2;
        f3 += g3;
    }
    let n = rounds as u64;
    let ints = [a0, a1, a2, a3, a4, a5];
    let floats = [f0, f1, f2, f3];
    ints.iter().zip(k).all(|(&a, k)| a == k.wrapping_mul(n))
        && floats.iter().zip(g).all(|(&f, g)| f == g * rounds as f64)
}

/// How many times the fibers of the live-values tests suspend.
const LIVE_ROUNDS: usize = 500_000;

/// Keeps values live across `LIVE_ROUNDS` suspends; exits with 1 if they
/// all survived.
unsafe extern "C" fn keeping_fiber(_: usize, link: *mut *mut u8, data: *mut u8) -> ! {
    let ok = keep_live_values(data as u64, LIVE_ROUNDS, || {
        // SAFETY: we run on the fiber that `link` belongs to.
        unsafe { suspend(0, link) };
    });
    // SAFETY: nothing with a destructor is live on this stack.
    unsafe { exit(ok as usize, link) }
}

/// Trashes the registers left to the compiler after each of `LIVE_ROUNDS`
/// suspends, while its resumer keeps values live; then exits.
unsafe extern "C" fn trashing_fiber(_: usize, link: *mut *mut u8, _: *mut u8) -> ! {
    for _ in 0..LIVE_ROUNDS {
        // SAFETY: we run on the fiber that `link` belongs to.
        unsafe { suspend(0, link) };
        trash_clobbered_registers();
    }
    // SAFETY: nothing with a destructor is live on this stack.
    unsafe { exit(1, link) }
}

/// Runs a raw fiber of `entry` to its end, calling `switch` for each
/// resume; returns the word it exited with.
fn run_raw(entry: EntryFn, data: usize, driver: impl FnOnce(&mut dyn FnMut() -> bool)) -> usize {
    let stack = Stack::new(64 * 1024).expect("stack");
    let link = ((stack.base() as usize - 32) & !15) as *mut *mut u8;
    // SAFETY: as in `raw_fiber`; the stack outlives the fiber, which has
    // exited when this function returns (checked below).
    let mut sp = unsafe { init_stack(link, entry, data as *mut u8) };
    let mut exited = None;
    let mut resume_once = || {
        if exited.is_some() {
            return false;
        }
        // SAFETY: `sp` is the fiber's current saved stack pointer.
        let t = unsafe { resume(0, sp, link) };
        if t.sp.is_null() {
            exited = Some(t.arg);
        } else {
            sp = t.sp;
        }
        true
    };
    driver(&mut resume_once);
    while resume_once() {}
    drop(stack);
    exited.expect("the fiber exited")
}

/// The registers the switch leaves to the compiler (r12-r15; x20-x28 and
/// d8-d15) are declared clobbered by the resumer's asm block: values the
/// resumer keeps live across `resume` survive a fiber that trashes them.
#[test]
fn resumer_values_survive_a_fiber_that_trashes_registers() {
    let mut resumer_ok = false;
    run_raw(trashing_fiber, 0, |resume_once| {
        resumer_ok = keep_live_values(0xC0FF_EE00, LIVE_ROUNDS, || {
            resume_once();
        });
    });
    assert!(resumer_ok, "the resumer's live values were corrupted");
}

/// ... and by the fiber's: values a fiber keeps live across `suspend`
/// survive a resumer that trashes them.
#[test]
fn fiber_values_survive_a_resumer_that_trashes_registers() {
    let fiber_ok = run_raw(keeping_fiber, 0x5EED_1234, |resume_once| {
        for _ in 0..LIVE_ROUNDS {
            resume_once();
            trash_clobbered_registers();
        }
    });
    assert_eq!(fiber_ok, 1, "the fiber's live values were corrupted");
}

/// The floating-point control state a process starts with, as [`read_fp`]
/// gives it.
#[cfg(target_arch = "x86_64")]
const DEFAULT_FP: u64 = 0x1F80 | (0x037F << 32);
/// Round toward zero with flush-to-zero; x87 rounding toward zero.
#[cfg(target_arch = "x86_64")]
const SENTINEL_FP: u64 = (0x1F80 | (3 << 13) | 0x8000) | ((0x037F | (3 << 10)) << 32);
/// FPCR 0: round to nearest, no flush-to-zero, no traps.
#[cfg(target_arch = "aarch64")]
const DEFAULT_FP: u64 = 0;
/// Round toward zero (RMode, bits 22-23) with flush-to-zero (FZ, bit 24).
#[cfg(target_arch = "aarch64")]
const SENTINEL_FP: u64 = (3 << 22) | (1 << 24);

/// The floating-point control state: MXCSR's control bits in the low half
/// and the x87 control word above them (x86_64), or FPCR (aarch64).
#[inline(always)]
fn read_fp() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut words: u64 = 0;
        // SAFETY: stmxcsr and fnstcw only store 4 and 2 bytes into the local.
        unsafe {
            asm!(
                "stmxcsr [{p}]",
                "fnstcw [{p} + 4]",
                p = in(reg) &mut words as *mut u64,
                options(nostack, preserves_flags),
            );
        }
        (words & 0xFFC0) | (words & (0xFFFF << 32))
    }
    #[cfg(target_arch = "aarch64")]
    {
        let fpcr: u64;
        // SAFETY: reading FPCR has no side effect.
        unsafe { asm!("mrs {}, fpcr", out(reg) fpcr, options(nostack, nomem, preserves_flags)) };
        fpcr
    }
}

/// Sets the floating-point control state to `words` (as [`read_fp`] gives
/// them). The tests keep the time spent in a non-default state to a few
/// instructions with no floating-point arithmetic, and always set
/// [`DEFAULT_FP`] back.
#[inline(always)]
fn write_fp(words: u64) {
    // SAFETY: ldmxcsr and fldcw read 4 and 2 bytes from the local; the
    // control bits given are valid (the callers pass the constants above).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        asm!(
            "ldmxcsr [{p}]",
            "fldcw [{p} + 4]",
            p = in(reg) &words as *const u64,
            options(nostack, readonly, preserves_flags),
        );
    }
    // SAFETY: as above, for FPCR.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        asm!("msr fpcr, {}", in(reg) words, options(nostack, nomem, preserves_flags));
    }
}

/// Sets the FP control state to `arg`, suspends, then reports the state it
/// finds when resumed, sets the default back and exits.
unsafe extern "C" fn fp_setting_fiber(arg: usize, link: *mut *mut u8, _: *mut u8) -> ! {
    write_fp(arg as u64);
    // SAFETY: we run on the fiber `link` belongs to.
    unsafe { suspend(0, link) };
    let seen = read_fp();
    write_fp(DEFAULT_FP);
    // SAFETY: as above; nothing with a destructor is live on this stack.
    unsafe { exit(seen as usize, link) }
}

/// With `fp-env`, each side of a switch keeps its own FP control state: a
/// fiber that changes it and suspends leaves its resumer's alone, and finds
/// its own again when resumed. Without it, the switch leaves the state
/// alone: the resumer sees what the fiber set, and the fiber what the
/// resumer set.
#[test]
fn the_fp_control_state_is_switched_only_with_fp_env() {
    let stack = Stack::new(64 * 1024).expect("stack");
    let link = ((stack.base() as usize - 32) & !15) as *mut *mut u8;
    // SAFETY: as in `raw_fiber`; the fiber exits before the stack is dropped.
    let sp = unsafe { init_stack(link, fp_setting_fiber, core::ptr::null_mut()) };
    write_fp(DEFAULT_FP);
    // SAFETY: `sp` is the fresh stack's; the fiber suspends once, then exits.
    let t = unsafe { resume(SENTINEL_FP as usize, sp, link) };
    let resumer_saw = read_fp();
    write_fp(DEFAULT_FP);
    assert!(!t.sp.is_null(), "the fiber suspended");
    // SAFETY: `t.sp` is the fiber's saved stack pointer.
    let t = unsafe { resume(0, t.sp, link) };
    let resumer_after = read_fp();
    write_fp(DEFAULT_FP);
    drop(stack);
    assert!(t.sp.is_null(), "the fiber exited");
    let fiber_saw = t.arg as u64;
    if FP_ENV {
        assert_eq!(resumer_saw, DEFAULT_FP, "the resumer kept its own state");
        assert_eq!(fiber_saw, SENTINEL_FP, "the fiber got its own state back");
    } else {
        assert_eq!(
            resumer_saw, SENTINEL_FP,
            "the switch left the fiber's state"
        );
        assert_eq!(fiber_saw, DEFAULT_FP, "the switch left the resumer's state");
    }
    assert_eq!(resumer_after, DEFAULT_FP, "the fiber set the default back");
}

/// Reports the floating-point control state it starts with, and exits.
#[cfg(feature = "fp-env")]
unsafe extern "C" fn report_fp_control(_: usize, link: *mut *mut u8, _: *mut u8) -> ! {
    let words = read_fp();
    // SAFETY: we run on the fiber `link` belongs to; nothing with a
    // destructor is live on its stack.
    unsafe { exit(words as usize, link) }
}

/// With `fp-env`, a new fiber starts with the floating-point control state
/// of its first resumer (not the defaults `init_stack` writes), and the
/// resumer gets its own back when the fiber exits.
#[cfg(feature = "fp-env")]
#[test]
fn a_new_fiber_starts_with_its_first_resumers_fp_control_state() {
    let stack = Stack::new(64 * 1024).expect("stack");
    let link = ((stack.base() as usize - 32) & !15) as *mut *mut u8;
    // SAFETY: as in `raw_fiber`; the fiber exits before the stack is dropped.
    let sp = unsafe { init_stack(link, report_fp_control, core::ptr::null_mut()) };
    write_fp(SENTINEL_FP);
    // SAFETY: `sp` is the fresh stack's; the fiber exits at once.
    let t = unsafe { resume(0, sp, link) };
    let back = read_fp();
    write_fp(DEFAULT_FP);
    drop(stack);
    assert!(t.sp.is_null(), "the fiber exited");
    assert_eq!(t.arg as u64, SENTINEL_FP, "the fiber's FP control state");
    assert_eq!(back, SENTINEL_FP, "the resumer's FP control state after");
}
