/*
 * x86_64.S - spindle's context switch for x86_64 Linux.
 *
 * This file is the fully commented reference; aarch64.S follows the same plan
 * and comments only what differs.
 *
 * Syntax: GNU as, Intel syntax without register prefixes ("mov rax, rbx"
 * copies rbx into rax), the same syntax Rust's asm! uses, so the inline
 * fragments in src/arch/x86_64.rs read the same way.
 *
 * ABI: System V AMD64. A call must preserve rbx, rbp, r12-r15, rsp, the
 * control bits of MXCSR (rounding mode, exception masks, FTZ/DAZ) and the x87
 * control word. Everything else (rax, rcx, rdx, rsi, rdi, r8-r11, all xmm
 * registers, the MXCSR status flags) may be clobbered by any call. That is
 * what a switched-out context needs kept: this file and the inline asm
 * blocks that enter it keep the registers between them (see "Who saves
 * what"); the floating-point control state is kept only when the crate's
 * `fp-env` feature is on (see "Floating-point control state" below).
 *
 * TWO CONFIGURATIONS
 *
 * build.rs assembles this file with SPINDLE_FP_ENV defined when the cargo
 * feature `fp-env` is on. The differences are all marked `#ifdef
 * SPINDLE_FP_ENV`: the frame grows by one quadword at its bottom for the
 * FP control words (FRAME_SIZE: 24 bytes, or 32), the frame macros store
 * and load them (six instructions), and spindle_fiber_start loads its
 * first resumer's (three). The CFI is written in terms of FRAME_SIZE, and
 * every register's place relative to the CFA is the same in both.
 *
 * THE THREE OPERATIONS
 *
 *   spindle_resume   a resumer (any code, on any stack) switches into a fiber.
 *   spindle_suspend  the running fiber switches back to whoever resumed it.
 *   spindle_exit     a finished fiber switches back for the last time.
 *
 * plus spindle_fiber_start, the first code a new fiber runs.
 *
 * WHO SAVES WHAT
 *
 * Both sides enter the switch from an inline asm block in Rust
 * (src/arch/x86_64.rs: resume() on the resumer's side, suspend() on the
 * fiber's), never through an ordinary Rust call. Each block declares r12-r15
 * and every caller-saved register clobbered, so the compiler itself saves
 * whichever of them hold live values around the block (usually few, and once
 * per function rather than once per switch when they sit in a loop). What no
 * asm! block can declare clobbered is saved here: rbx and rbp (LLVM reserves
 * them), rsp (it becomes the frame's address) and, with `fp-env`, the
 * floating-point control state. Between the two, every register the ABI says
 * a call preserves is preserved.
 *
 * THE SAVED FRAME
 *
 * A context that is switched away from pushes its state on its own stack and
 * is then known by a single value: its stack pointer, which points at a saved
 * frame. Resumers and suspended fibers push the same frame, FRAME_SIZE
 * bytes: 24 by default, 32 with fp-env, which puts the FP control words
 * below the rest (src/arch/x86_64.rs mirrors it as a #[repr(C)] struct and
 * checks these offsets at compile time, for the configuration it is built
 * in):
 *
 *      default  fp-env  contents
 *      -------  ------  -------------------------------------------------
 *         -       +0    MXCSR (4 bytes) | x87 control word (2) | unused (2)
 *        +0       +8    rbx
 *        +8      +16    rbp
 *       +16      +24    return address: where this context goes on when it
 *                       is switched back to (pushed by the resumer's `call`,
 *                       or by the fiber's inline asm by hand)
 *       +24      +32    (the CFA: the context's stack pointer before the
 *                       switch)
 *
 * rbp sits right below the address, so [rbp, address] is an ordinary frame
 * record for profilers that walk frame pointers. Every offset the CFI uses
 * is relative to the CFA (the address at -8, rbp at -16, rbx at -24), so it
 * is the same in both configurations; only the CFA's distance from the
 * frame's start, FRAME_SIZE, differs.
 *
 * A saved stack pointer is 8 mod 16 by default (the resumer's `call` left
 * its stack 8 mod 16, and 16 more bytes are pushed), 0 mod 16 with fp-env.
 * Nothing depends on it: each context gets its own stack pointer back
 * exactly, with the alignment it had.
 *
 * A round trip (resume, then suspend) moves 6 words through memory (8 with
 * fp-env). A switch that saved every callee-saved register itself, as a C
 * function must, would move 16, most of them registers holding nothing the
 * program needs.
 *
 * THE PARENT LINK
 *
 * Every fiber stack has one word near its top, the parent link. Each resume
 * stores the resumer's stack pointer there; suspend and exit read it to find
 * their way back. It is also how a debugger or std::backtrace finds the
 * resumer's frames from inside the fiber (see spindle_fiber_start).
 *
 * STACKS, DRAWN (addresses grow upwards, the stack grows down)
 *
 * A suspended fiber's stack:            The resumer's stack while the
 *                                       fiber runs:
 *   +-------------------+ base
 *   | closure, FiberInfo|                 |  resumer's frames  |
 *   +-------------------+                 |  (r12-r15 saved by |
 *   | (unused word)     |                 |  the compiler, if  |
 *   | parent link  -----+---------+       |  they were live)   |
 *   +-------------------+         |       +--------------------+
 *   | fiber's frames    |         |       | return address     | <- pushed by
 *   |  ...              |         |       | rbp                |    "call
 *   | resume address    |         |       | rbx                |    spindle_resume"
 *   | rbp, rbx          |         +-----> | (fp-env: FP words) |
 *   | (fp-env: FP words)| <- saved sp     +--------------------+ <- parent link
 *   +-------------------+    (kept in the                           points here
 *   | guard page(s)     |     Coroutine)
 *   |  (faults on touch: see src/stack/overflow.rs)
 *
 * A fresh stack before its first switch (written by src/arch/mod.rs,
 * init_stack): a saved frame whose resume address is the trampoline.
 *
 *   +-------------------+ base
 *   | closure, FiberInfo|
 *   | (unused word)     |
 *   | parent link = 0   | <- sp of spindle_fiber_start (link address)
 *   | spindle_fiber_start  (resume address)
 *   | rbp = data        |  (the closure's address)
 *   | rbx = entry fn    |
 *   | (fp-env: the      | <- initial sp
 *   |  default FP words;|    see spindle_fiber_start)
 *   +-------------------+
 *
 * RETURN-ADDRESS PREDICTION
 *
 * The CPU predicts every `ret` from a small hidden stack of the addresses
 * pushed by recent `call`s. A switch that ends in `ret` on another stack
 * returns somewhere the predictor never saw, and mispredicts on every switch
 * (10-20 cycles each). spindle keeps the two paired instead:
 *
 *   - the resumer enters spindle_resume with a real `call` (one push);
 *   - spindle_resume enters the fiber with `jmp`, leaving that push alone;
 *   - the fiber enters spindle_suspend / spindle_exit with `jmp` too (the Rust
 *     side pushes its own return address by hand, src/arch/x86_64.rs);
 *   - spindle_suspend / spindle_exit go back with `ret`, which pops exactly
 *     the address the resumer's `call` pushed: predicted correctly.
 *
 * So a resume/suspend round trip has one call and one ret, correctly paired,
 * whatever runs in between; the jumps are predicted by the indirect-branch
 * predictor like any other.
 *
 * FLOATING-POINT CONTROL STATE
 *
 * By default the switch does not touch MXCSR or the x87 control word, as
 * corosensei, wasmtime's fibers and Go's scheduler do not. Rust assumes the
 * default floating-point environment everywhere: since Rust 1.75 the docs of
 * core::arch's _mm_setcsr say that changing the rounding mode, the exception
 * masks or FTZ/DAZ is undefined behaviour, and the intrinsics are
 * deprecated. A switch happens only inside a Rust call (resume, suspend),
 * where in any sound program that environment is the default on both sides,
 * so there is nothing to save.
 *
 * With the `fp-env` feature (SPINDLE_FP_ENV), for programs whose C code
 * changes the environment and switches fibers while it is changed, each
 * switch stores the current MXCSR and x87 control word into the frame it
 * pushes (stmxcsr, fnstcw) and loads the ones of the frame it pops (ldmxcsr,
 * fldcw), unconditionally, and a new fiber takes its first resumer's words
 * (spindle_fiber_start). Only MXCSR's control bits (6-15) matter to the ABI;
 * its status flags (0-5) travel along, which is harmless: no caller may rely
 * on them across a call.
 *
 * Why not compare first and load only when the words differ? Because the
 * comparison must read back the value stmxcsr has just stored, and on the
 * CPUs measured (AMD EPYC, BENCHMARKS.md) that load cannot be forwarded from
 * the store: it waits for the store to reach the cache, about 2.5 ns per
 * switch, while the two loads cost about 0.6 ns together. The store itself
 * (stmxcsr is microcoded there, about 2.4 ns) is the price of keeping the
 * control state at all. Measured with benches/switch.rs on that CPU, the
 * FP instructions took about 7.7 ns of an 11 ns round trip, and with
 * fp-env a round trip takes 3.1-3.3 times corosensei's, against 0.88-1.0
 * without (6.8 ns against 1.9 ns on the quiet machine; BENCHMARKS.md has
 * the figures and commands).
 */

#include "header.h"

    .intel_syntax noprefix

/* The saved frame's size in bytes (see above). */
#ifdef SPINDLE_FP_ENV
#define FRAME_SIZE 32
#else
#define FRAME_SIZE 24
#endif

/*
 * Push the saved frame (see above) below the address at [rsp]: rbp, rbx,
 * then, with fp-env, a quadword holding MXCSR and the x87 control word.
 * Each push is followed by the CFI that says where it went: keep the two in
 * the same order. On entry the CFA must be rsp + 8; on exit it is
 * rsp + FRAME_SIZE. The FP words have no CFI: they are not registers an
 * unwinder restores.
 */
.macro PUSH_FRAME
    push rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbp, 0
    push rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbx, 0
#ifdef SPINDLE_FP_ENV
    sub rsp, 8
    .cfi_adjust_cfa_offset 8
    stmxcsr [rsp]
    fnstcw [rsp + 4]
#endif
.endm

/*
 * Pop the saved frame at rsp, up to (not including) its address word, which
 * is then at [rsp]. No CFI: by now each caller has pointed the CFA at the
 * frame it pushed, through another register, and that stays true here.
 */
.macro POP_FRAME
#ifdef SPINDLE_FP_ENV
    ldmxcsr [rsp]
    fldcw [rsp + 4]
    add rsp, 8
#endif
    pop rbx
    pop rbp
.endm

/* ------------------------------------------------------------------------
 * spindle_resume: arg in rdi, fiber's saved sp in rsi, &parent link in rdx
 *
 *   Rust: reached only from the inline asm in src/arch/x86_64.rs, resume():
 *     call spindle_resume
 *   with r12-r15 and every caller-saved register declared clobbered. Like
 *   spindle_suspend, it is not an extern "C" function: it keeps only rbx,
 *   rbp, rsp and, with fp-env, the FP control state (see "Who saves
 *   what").
 *
 * Contract: runs on the resumer's stack. `fiber_sp` is a saved frame (a
 * suspended fiber, or a fresh stack from init_stack) and `link` is that
 * fiber's parent link. Execution goes on in the fiber with `arg` in rdi. It
 * "returns" only when the fiber suspends or exits: rax = the word the fiber
 * sent, rdx = its new saved stack pointer, or 0 if it finished.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_resume)
    .cfi_startproc
    /* rdi = arg, rsi = fiber's saved sp, rdx = &parent link.
     * [rsp] = our return address; CFA = rsp + 8. */
    PUSH_FRAME

    /* The frame is complete. Publish it in the fiber's parent link, keep a
     * copy in rax, and take the fiber's stack. From here until the final
     * jmp the unwinder finds our frame through rax. */
    mov [rdx], rsp
    mov rax, rsp
    .cfi_def_cfa rax, FRAME_SIZE
    mov rsp, rsi

    /* rsp = the fiber's frame. Pop it. */
    POP_FRAME
    /* [rsp] = the fiber's resume address. Pop it and jump: a `ret` here
     * would pop the return address our caller's `call` pushed on the
     * predictor's stack, which belongs to the matching suspend. rdi still
     * holds `arg`. */
    pop rcx
    jmp rcx
    .cfi_endproc
END_FUNCTION(spindle_resume)

/* ------------------------------------------------------------------------
 * spindle_suspend: arg in rdi, &parent link in rsi, [rsp] = resume address
 *
 *   Rust: reached only from the inline asm in src/arch/x86_64.rs, suspend():
 *     lea rax, [rip + 2f]; push rax; jmp spindle_suspend; 2:
 *   with r12-r15 and every caller-saved register declared clobbered. It is
 *   entered by jmp with a return address pushed by hand, so the CPU's return
 *   predictor is not touched.
 *
 * Contract: runs on a fiber's stack; the fiber was resumed by spindle_resume,
 * whose frame is in the parent link. Pushes a saved frame and returns from
 * that spindle_resume with rax = arg, rdx = the fiber's saved sp. When the
 * fiber is resumed again, execution continues at the pushed resume address
 * with the resumer's argument in rdi.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_suspend)
    .cfi_startproc
    /* Entered as if called: [rsp] = resume address, CFA = rsp + 8. */
    PUSH_FRAME

    /* rdx = the fiber's saved sp (the second half of what the resumer
     * receives); then take the resumer's stack from the link. */
    mov rdx, rsp
    .cfi_def_cfa rdx, FRAME_SIZE
    mov rsp, [rsi]

    /* rsp = the resumer's frame. Pop it. */
    POP_FRAME
    /* rax = arg, rdx = our sp: what spindle_resume returns. [rsp] is the
     * address the resumer's `call spindle_resume` pushed, so this `ret` is
     * the one the return predictor expects. */
    mov rax, rdi
    ret
    .cfi_endproc
END_FUNCTION(spindle_suspend)

/* ------------------------------------------------------------------------
 * spindle_exit: arg in rdi, &parent link in rsi. Never returns.
 *
 *   Rust: reached only by `jmp` from src/arch/x86_64.rs, exit(), when the
 *   fiber's function has finished and nothing with a destructor is left on
 *   its stack.
 *
 * Contract: like spindle_suspend, but the fiber is not saved: the resumer's
 * spindle_resume returns rax = arg, rdx = 0, meaning "finished". The fiber's
 * stack stays mapped, so `arg` may point into it until the resumer has read
 * what it points at.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_exit)
    .cfi_startproc
    /* Nothing of this frame is worth unwinding into. */
    .cfi_undefined rip
    mov rsp, [rsi]
    POP_FRAME
    mov rax, rdi
    xor edx, edx
    ret
    .cfi_endproc
END_FUNCTION(spindle_exit)

/* ------------------------------------------------------------------------
 * spindle_fiber_start: the first code a fiber runs. Never returns.
 *
 *   Rust: never called directly; init_stack() stores its address as the
 *   resume address of a fresh stack, so the first spindle_resume jumps here.
 *
 * On entry (set up by init_stack and spindle_resume):
 *   rsp = the parent link's address (the link holds the resumer's sp)
 *   rdi = the argument of the first resume
 *   rbx = the fiber's entry function:
 *         extern "C" fn(arg: usize, link: *mut *mut u8, data: *mut u8) -> !
 *   rbp = data (the closure, on this stack)
 *   with fp-env: MXCSR, x87 CW = the defaults init_stack wrote (see below)
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_fiber_start)
    .cfi_startproc
    /* Mark the frame as a signal frame. Signal handlers run on other stacks,
     * so debuggers accept that the frame above this one lives on a different
     * stack (gdb otherwise stops with "previous frame inner to this frame"
     * when the resumer's stack is below the fiber's). A side effect: the
     * unwinder looks up this frame's caller at the return address itself,
     * not the address minus one. */
    .cfi_signal_frame
    /* Where is the resumer's frame? Not at a fixed offset from anything the
     * unwinder knows, so the CFA is a DWARF expression: "read the parent link
     * and add FRAME_SIZE" -- the link holds the resumer's sp, and its CFA is
     * the size of the saved frame above it. The bytes:
     *   0x0f        DW_CFA_def_cfa_expression
     *   5           the expression is 5 bytes long:
     *   0x77 0x00     DW_OP_breg7 (rsp) + 0   -> address of the parent link
     *   0x06          DW_OP_deref             -> the resumer's saved sp
     *   0x23 FRAME_SIZE                       -> the resumer's CFA
     *                 DW_OP_plus_uconst (24 = 0x18, or 32 = 0x20 with
     *                 fp-env; one ULEB128 byte either way)
     */
    .cfi_escape 0x0f, 5, 0x77, 0x00, 0x06, 0x23, FRAME_SIZE
    /* The resumer's return address, rbp and rbx are in its frame, below that
     * CFA. Its r12-r15 are wherever the compiler saved them (the resumer's
     * asm block declared them clobbered): in the resumer's own frames, whose
     * CFI says so. At the call itself they hold nothing, hence undefined. */
    .cfi_offset rip, -8
    .cfi_offset rbp, -16
    .cfi_offset rbx, -24
    .cfi_undefined r12
    .cfi_undefined r13
    .cfi_undefined r14
    .cfi_undefined r15

#ifdef SPINDLE_FP_ENV
    /* A new fiber takes the floating-point control state of its first
     * resumer, as a new thread takes its creator's: the resumer saved it at
     * the bottom of its frame, which the parent link points at. (init_stack
     * wrote the defaults into the fresh frame only so that the pop in
     * spindle_resume loads valid words; reading the creator's there would
     * cost an stmxcsr per fiber.) rax is free: it carries nothing into a
     * fiber's first call. Without fp-env nothing touches the control state,
     * so the fiber runs with whatever its resumer had: the same outcome. */
    mov rax, [rsp]
    ldmxcsr [rax]
    fldcw [rax + 4]
#endif

    /* Arguments of the entry function: rdi = arg (already there),
     * rsi = &parent link, rdx = data. rbp = 0 ends frame-pointer walks. */
    mov rsi, rsp
    mov rdx, rbp
    xor ebp, ebp
    /* Enter it as if called from here, but with push + jmp instead of call:
     * the entry function never returns (it leaves with spindle_exit's `ret`,
     * which must pop the resumer's return address), so a `call` would leave
     * one unmatched entry on the return predictor's stack. The pushed address
     * only serves the unwinder, and points inside this function. rsp was
     * 16-byte aligned, so the entry function sees rsp = 8 mod 16, as after a
     * call. */
    lea rcx, [rip + 3f]
    push rcx
    /* The CFI rows above describe this frame as the unwinder sees it from
     * the entry function: as if the call had returned, rsp = the link's
     * address. Only during the next instruction is rsp 8 bytes lower; an
     * asynchronous unwinder (a profiler's signal) landing exactly there
     * would misread one frame. Nothing unwinds there synchronously. */
    jmp rbx
3:
    /* The entry function never returns here: trap if it ever does. */
    ud2
    .cfi_endproc
END_FUNCTION(spindle_fiber_start)

GNU_STACK_NOTE
