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
 * exactly what a suspended fiber needs saved, and all this file saves.
 *
 * THE THREE OPERATIONS
 *
 *   spindle_resume   a resumer (any code, on any stack) switches into a fiber.
 *   spindle_suspend  the running fiber switches back to whoever resumed it.
 *   spindle_exit     a finished fiber switches back for the last time.
 *
 * plus spindle_fiber_start, the first code a new fiber runs.
 *
 * TWO KINDS OF SAVED FRAME
 *
 * A context that is switched away from pushes its state on its own stack and
 * is then known by a single value: its stack pointer, which points at a saved
 * frame. There are two kinds, because the two sides of a switch are entered
 * differently (src/arch/x86_64.rs mirrors both as #[repr(C)] structs and
 * checks these offsets at compile time):
 *
 * The resumer's frame (64 bytes), pushed by spindle_resume. The resumer
 * entered with an ordinary `call`, so everything the ABI says a call
 * preserves must be saved here:
 *
 *      offset  contents
 *      ------  ----------------------------------------------------------
 *        +0    MXCSR (4 bytes) | x87 control word (2 bytes) | unused (2)
 *        +8    r15
 *       +16    r14
 *       +24    r13
 *       +32    r12
 *       +40    rbx
 *       +48    rbp
 *       +56    return address (pushed by the resumer's `call`)
 *       +64    (the CFA: the resumer's stack pointer before the call)
 *
 * The fiber's frame (32 bytes), pushed by spindle_suspend. The fiber enters
 * the switch from an inline asm block (src/arch/x86_64.rs, suspend) that
 * declares r12-r15 clobbered, so the compiler itself saves whichever of them
 * hold live values, usually none in a tight loop. What no asm! block can
 * declare clobbered must be saved here: rbx and rbp (LLVM reserves them),
 * rsp (the frame's address) and the floating-point control state:
 *
 *      offset  contents
 *      ------  ----------------------------------------------------------
 *        +0    MXCSR | x87 control word | unused
 *        +8    rbx
 *       +16    rbp
 *       +24    resume address (pushed by the fiber's inline asm)
 *       +32    (the CFA)
 *
 * This split is what makes the switch cheap: a round trip moves 11 words
 * through memory instead of 16, and the registers the compiler saves are
 * saved once per function, not once per switch. Resumers are always
 * resumer frames and suspended fibers always fiber frames, so each entry
 * point knows which kind it pushes and which it pops.
 *
 * In both, rbp sits right below the resume or return address, so that
 * [rbp, address] is an ordinary frame record for profilers that walk frame
 * pointers.
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
 *   +-------------------+                 +--------------------+
 *   | (unused word)     |                 | return address     | <- pushed by
 *   | parent link  -----+---------+       | rbp                |    "call
 *   +-------------------+         |       | rbx, r12 ... r15   |    spindle_resume"
 *   | fiber's frames    |         +-----> | MXCSR | x87 CW     |
 *   |  ...              |                 +--------------------+ <- parent link
 *   | resume address    |                                           points here
 *   | rbp, rbx          |
 *   | MXCSR | x87 CW    | <- saved stack pointer (kept in the Coroutine)
 *   +-------------------+
 *   | guard page(s)     |   (faults on touch: see src/stack/overflow.rs)
 *
 * A fresh stack before its first switch (written by src/arch/mod.rs,
 * init_stack): a fiber frame whose resume address is the trampoline.
 *
 *   +-------------------+ base
 *   | closure, FiberInfo|
 *   | (unused word)     |
 *   | parent link = 0   | <- sp of spindle_fiber_start (link address)
 *   | spindle_fiber_start  (resume address)
 *   | rbp = data        |  (the closure's address)
 *   | rbx = entry fn    |
 *   | MXCSR | x87 CW    | <- initial sp  (copied from the creating thread)
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
 * Saving MXCSR and the x87 control word is cheap (two stores); loading them
 * is not (ldmxcsr and fldcw partly serialise the pipeline). They almost never
 * differ between two contexts, so the switch compares the saved copies and
 * loads only when the control bits differ.
 */

#include "header.h"

    .intel_syntax noprefix

/*
 * Save the floating-point control state into the quadword at [rsp]: MXCSR in
 * its low 4 bytes, the x87 control word in the next 2.
 */
.macro SAVE_FP_CONTROL
    stmxcsr [rsp]
    fnstcw [rsp + 4]
.endm

/*
 * Compare the floating-point control state of two saved frames, at [rsp]
 * (the one about to be restored) and [\saved] (the one just saved); jump to
 * \load if it differs. MXCSR bits 6-15 are its control bits (DAZ, exception
 * masks, rounding, FTZ); bits 0-5 are status flags, which the ABI does not
 * preserve. The x87 control word is compared whole.
 *
 * The two halves are read with a 4-byte and a 2-byte load, each the exact
 * size of the stmxcsr / fnstcw store that wrote [\saved] a few instructions
 * earlier, so the CPU forwards the stored values to the loads. One 8-byte
 * load spanning both stores cannot be forwarded and stalls until they reach
 * the cache (measured here: +8 ns per round trip).
 *
 * Clobbers ecx and \tmp, \tmp2 (32-bit registers); keeps everything else.
 */
.macro FP_CONTROL_DIFFERS saved, tmp, tmp2, load
    mov ecx, [rsp]
    xor ecx, [\saved]
    and ecx, 0xFFC0
    movzx \tmp, word ptr [rsp + 4]
    movzx \tmp2, word ptr [\saved + 4]
    xor \tmp, \tmp2
    or ecx, \tmp
    jnz \load
.endm

/* Load the floating-point control state of the frame at [rsp]. */
.macro LOAD_FP_CONTROL
    ldmxcsr [rsp]
    fldcw [rsp + 4]
.endm

/* ------------------------------------------------------------------------
 * Transfer spindle_resume(usize arg, *mut u8 fiber_sp, *mut *mut u8 link)
 *
 *   Rust: extern "C" fn spindle_resume(arg: usize, sp: *mut u8,
 *                                      link: *mut *mut u8) -> Transfer
 *   where #[repr(C)] struct Transfer { arg: usize, sp: *mut u8 }
 *
 * Contract: called with `call` from Rust, by the resumer, on the resumer's
 * stack. `fiber_sp` is a fiber frame (a suspended fiber, or a fresh stack
 * from init_stack) and `link` is that fiber's parent link. Execution goes on
 * in the fiber with `arg` in rdi. It "returns" only when the fiber suspends
 * or exits: rax = the value the fiber sent, rdx = its new saved stack
 * pointer, or 0 if it finished. Preserves everything a C call must.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_resume)
    .cfi_startproc
    /* rdi = arg, rsi = fiber's saved sp, rdx = &parent link.
     * [rsp] = our return address; CFA = rsp + 8. */

    /* Push the resumer frame. Each push is followed by the CFI that says
     * where it went; keep the two in the same order. */
    push rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbp, 0
    push rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbx, 0
    push r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r12, 0
    push r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r13, 0
    push r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r14, 0
    push r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r15, 0
    /* One more quadword for the floating-point control state. */
    sub rsp, 8
    .cfi_adjust_cfa_offset 8
    SAVE_FP_CONTROL

    /* The frame is complete (rsp is 16-byte aligned again: 8 for the return
     * address + 7 * 8). Publish it in the fiber's parent link, keep a copy
     * in rax, and take the fiber's stack. From here until the final jmp the
     * unwinder finds our frame through rax. */
    mov [rdx], rsp
    mov rax, rsp
    .cfi_def_cfa rax, 64
    mov rsp, rsi

    /* rsp = the fiber frame, rax = our frame. */
    FP_CONTROL_DIFFERS rax, edx, r8d, 2f
1:
    /* Pop the fiber frame. */
    add rsp, 8
    pop rbx
    pop rbp
    /* [rsp] = the fiber's resume address. Pop it and jump: a `ret` here
     * would pop the return address our caller's `call` pushed on the
     * predictor's stack, which belongs to the matching suspend. rdi still
     * holds `arg`. */
    pop rcx
    jmp rcx
2:
    LOAD_FP_CONTROL
    jmp 1b
    .cfi_endproc
END_FUNCTION(spindle_resume)

/* ------------------------------------------------------------------------
 * spindle_suspend: arg in rdi, &parent link in rsi, [rsp] = resume address
 *
 *   Rust: reached only from the inline asm in src/arch/x86_64.rs, suspend():
 *     lea rax, [rip + 2f]; push rax; jmp spindle_suspend; 2:
 *   with r12-r15 and every caller-saved register declared clobbered. It is
 *   not an extern "C" function: it is entered by jmp with a return address
 *   pushed by hand, so the CPU's return predictor is not touched.
 *
 * Contract: runs on a fiber's stack; the fiber was resumed by spindle_resume,
 * whose frame is in the parent link. Pushes a fiber frame and returns from
 * that spindle_resume with rax = arg, rdx = the fiber's saved sp. When the
 * fiber is resumed again, execution continues at the pushed resume address
 * with the resumer's argument in rdi.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_suspend)
    .cfi_startproc
    /* Entered as if called: [rsp] = resume address, CFA = rsp + 8. */
    push rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbp, 0
    push rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbx, 0
    sub rsp, 8
    .cfi_adjust_cfa_offset 8
    SAVE_FP_CONTROL

    /* rdx = the fiber's saved sp (the second half of the Transfer the
     * resumer receives); then take the resumer's stack from the link. */
    mov rdx, rsp
    .cfi_def_cfa rdx, 32
    mov rsp, [rsi]

    /* rsp = the resumer frame, rdx = ours. */
    FP_CONTROL_DIFFERS rdx, eax, r8d, 2f
1:
    /* Pop the resumer frame. */
    add rsp, 8
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    /* rax = arg, rdx = our sp: the Transfer spindle_resume returns. [rsp] is
     * the address the resumer's `call spindle_resume` pushed, so this `ret`
     * is the one the return predictor expects. */
    mov rax, rdi
    ret
2:
    LOAD_FP_CONTROL
    jmp 1b
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
    /* The fiber's FP control state is not saved, so load the resumer's
     * unconditionally (once per fiber lifetime). */
    LOAD_FP_CONTROL
    add rsp, 8
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
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
     * and add 64" -- the link holds the resumer's sp, and its CFA is 64 bytes
     * above (the size of the resumer frame). The bytes:
     *   0x0f        DW_CFA_def_cfa_expression
     *   5           the expression is 5 bytes long:
     *   0x77 0x00     DW_OP_breg7 (rsp) + 0   -> address of the parent link
     *   0x06          DW_OP_deref             -> the resumer's saved sp
     *   0x23 0x40     DW_OP_plus_uconst 64    -> the resumer's CFA
     */
    .cfi_escape 0x0f, 5, 0x77, 0x00, 0x06, 0x23, 0x40
    /* The resumer's registers are in its frame, below that CFA. */
    .cfi_offset rip, -8
    .cfi_offset rbp, -16
    .cfi_offset rbx, -24
    .cfi_offset r12, -32
    .cfi_offset r13, -40
    .cfi_offset r14, -48
    .cfi_offset r15, -56

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
