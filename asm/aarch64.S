/*
 * aarch64.S - spindle's context switch for AArch64 Linux.
 *
 * Read x86_64.S first: it is the fully commented reference, and this file
 * follows the same plan (three operations, a saved frame, a parent link,
 * a first-entry trampoline). The comments here say what differs.
 *
 * Syntax: GNU as for AArch64 ("//" starts a comment, "#" marks immediates).
 *
 * ABI: AAPCS64. A call must preserve x19-x28, x29 (the frame pointer),
 * x30 (the link register: where the callee returns to), sp, and the low 64
 * bits of v8-v15, i.e. d8-d15. x18 is the platform register: this file never
 * reads or writes it. FPCR (rounding mode, FZ, default NaN, trap enables) is
 * the floating-point control state: by default the switch leaves it alone,
 * for the reasons "Floating-point control state" in x86_64.S gives; with the
 * `fp-env` feature (SPINDLE_FP_ENV, defined by build.rs) it travels in the
 * frame's spare word, as MXCSR and the x87 control word do on x86_64, and a
 * new fiber takes its first resumer's.
 *
 * WHAT DIFFERS FROM x86_64
 *
 *   - There is no push: the frame is reserved with one `sub sp` and filled
 *     with stp (store pair) instructions, two registers at a time.
 *   - `bl` (branch with link) puts the return address in x30 instead of on
 *     the stack. So the resume address of a suspended context is simply its
 *     saved x30, and the caller's return address is saved with the rest.
 *   - The return predictor: `bl`/`blr` push onto it and `ret` pops from it;
 *     `b` and `br` leave it alone. The pairing is the same as on x86_64:
 *     the resumer's `bl spindle_resume` is matched by the `ret` at the end of
 *     spindle_suspend / spindle_exit; every other transfer is `b` or `br`.
 *
 * THE SAVED FRAME (src/arch/aarch64.rs mirrors it)
 *
 * As on x86_64, both sides enter the switch from inline asm that declares
 * x20-x28, v8-v15 and every caller-saved register clobbered, so the compiler
 * saves the ones it uses; the assembly saves what an asm! block cannot
 * declare: x19 (LLVM's base pointer), x29 (the frame pointer), sp, and x30
 * (the address to go on at). Resumers and suspended fibers push the same
 * 32-byte frame:
 *
 *      offset  contents
 *      ------  -------------------
 *        +0    x19, with fp-env FPCR (else unused)
 *       +16    x29, x30 (x30 = return / resume address)
 *       +32    (the CFA)
 *
 * x29 and x30 sit together at the top, in that order, so they form an
 * ordinary AAPCS64 frame record for frame-pointer walkers. Unlike x86_64's,
 * the frame is 32 bytes in both configurations: sp must stay 16-byte
 * aligned, so the spare word is there anyway, and fp-env only fills it.
 *
 * The stack diagrams of x86_64.S hold here with this frame in place of the
 * x86_64 one. In a fresh stack's frame: x30 = spindle_fiber_start, x19 = the
 * entry function, x29 = data, the spare word = FPCR 0 (the value a Linux
 * process starts with; loaded only with fp-env, and then replaced by the
 * first resumer's in spindle_fiber_start); after it is popped, sp = the
 * parent link's address.
 *
 * BTI: the jumps into a context (`br x30`) would need `bti j` landing pads on
 * a system that enforces Branch Target Identification. This object does not
 * carry the BTI property note, so the linker never enables BTI for a program
 * that contains it.
 */

#include "header.h"

/* Push the 32-byte saved frame, with the CFI for each store. On entry the
 * CFA must be sp; on exit it is sp + 32. With fp-env, x9 (caller-saved,
 * free at every use: the asm blocks declare it clobbered) carries FPCR into
 * the spare word, which has no CFI (FPCR is not a register an unwinder
 * restores). */
.macro PUSH_FRAME
    sub sp, sp, #32
    .cfi_adjust_cfa_offset 32
    stp x29, x30, [sp, #16]
    .cfi_rel_offset x29, 16
    .cfi_rel_offset x30, 24
#ifdef SPINDLE_FP_ENV
    mrs x9, fpcr
    stp x19, x9, [sp, #0]
#else
    str x19, [sp, #0]
#endif
    .cfi_rel_offset x19, 0
.endm

/* Pop the saved frame at sp. No CFI: by now each caller has pointed the CFA
 * at the frame it pushed, through another register. */
.macro POP_FRAME
#ifdef SPINDLE_FP_ENV
    ldp x19, x9, [sp, #0]
    msr fpcr, x9
#else
    ldr x19, [sp, #0]
#endif
    ldp x29, x30, [sp, #16]
    add sp, sp, #32
.endm

/* ------------------------------------------------------------------------
 * spindle_resume: x0 = arg, x1 = fiber's saved sp, x2 = &parent link.
 *
 *   Rust: reached only from the inline asm in src/arch/aarch64.rs, resume():
 *     bl spindle_resume
 *   with x20-x28, v8-v15 and every caller-saved register declared clobbered.
 *   It returns x0 = the word the fiber sent, x1 = its saved sp (0 when the
 *   fiber finished).
 *
 * Contract: as on x86_64. Enters the fiber with x0 = arg.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_resume)
    .cfi_startproc
    /* x30 = our return address. */
    PUSH_FRAME
    /* Publish our frame in the link; x3 keeps it for the unwinder. */
    mov x3, sp
    str x3, [x2]
    .cfi_def_cfa x3, 32
    mov sp, x1
    POP_FRAME
    /* x30 = the fiber's resume address. `br`, not `ret`: a `ret` would pop
     * the predictor entry our caller's `bl` pushed. x0 still holds arg. */
    br x30
    .cfi_endproc
END_FUNCTION(spindle_resume)

/* ------------------------------------------------------------------------
 * spindle_suspend: x0 = arg, x1 = &parent link, x30 = resume address.
 *
 *   Rust: reached only from the inline asm in src/arch/aarch64.rs:
 *     adr x30, 2f; b spindle_suspend; 2:
 *   with x20-x28, v8-v15 and every caller-saved register declared clobbered.
 *
 * Contract: as on x86_64; pushes the fiber's frame, pops the resumer's;
 * spindle_resume returns x0 = arg, x1 = our sp.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_suspend)
    .cfi_startproc
    PUSH_FRAME
    mov x2, sp
    .cfi_def_cfa x2, 32
    ldr x3, [x1]
    mov sp, x3
    POP_FRAME
    /* x30 = the resumer's return address, pushed on the predictor by its
     * `bl spindle_resume`: this `ret` is predicted. */
    mov x1, x2
    ret
    .cfi_endproc
END_FUNCTION(spindle_suspend)

/* ------------------------------------------------------------------------
 * spindle_exit: x0 = arg, x1 = &parent link. Never returns.
 *
 *   Rust: reached only by `b` from src/arch/aarch64.rs, exit().
 *
 * Contract: as on x86_64; spindle_resume returns x0 = arg, x1 = 0.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_exit)
    .cfi_startproc
    .cfi_undefined x30
    ldr x3, [x1]
    mov sp, x3
    POP_FRAME
    mov x1, xzr
    ret
    .cfi_endproc
END_FUNCTION(spindle_exit)

/* ------------------------------------------------------------------------
 * spindle_fiber_start: the first code a fiber runs. Never returns.
 *
 * On entry: sp = &parent link, x0 = arg, x19 = entry function,
 * x29 = data.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_fiber_start)
    .cfi_startproc
    .cfi_signal_frame
    /* CFA = *(sp + 0) + 32. The bytes:
     *   0x0f        DW_CFA_def_cfa_expression
     *   5           the expression is 5 bytes long:
     *   0x8f 0x00     DW_OP_breg31 (sp) + 0   -> address of the parent link
     *   0x06          DW_OP_deref             -> the resumer's saved sp
     *   0x23 0x20     DW_OP_plus_uconst 32    -> the resumer's CFA
     * Unlike x86_64, sp does not move in this function, so the one rule
     * is exact at every instruction. */
    .cfi_escape 0x0f, 5, 0x8f, 0x00, 0x06, 0x23, 0x20
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    .cfi_offset x19, -32
    /* The registers the resumer's asm block declared clobbered hold nothing
     * at the call: the compiler saved the live ones in the resumer's own
     * frames, whose CFI says where. */
    .cfi_undefined x20
    .cfi_undefined x21
    .cfi_undefined x22
    .cfi_undefined x23
    .cfi_undefined x24
    .cfi_undefined x25
    .cfi_undefined x26
    .cfi_undefined x27
    .cfi_undefined x28
    .cfi_undefined d8
    .cfi_undefined d9
    .cfi_undefined d10
    .cfi_undefined d11
    .cfi_undefined d12
    .cfi_undefined d13
    .cfi_undefined d14
    .cfi_undefined d15
#ifdef SPINDLE_FP_ENV
    /* A new fiber takes its first resumer's FPCR, saved in the spare word of
     * the resumer's frame, which the parent link points at (see x86_64.S). */
    ldr x9, [sp]
    ldr x9, [x9, #8]
    msr fpcr, x9
#endif
    /* Arguments: x0 = arg (already), x1 = &parent link, x2 = data.
     * x29 = 0 ends frame-pointer walks. */
    mov x1, sp
    mov x2, x29
    mov x29, xzr
    /* A return address for the unwinder only, inside this function; `br`
     * rather than `blr` keeps the return predictor paired (see x86_64.S). */
    adr x30, 3f
    br x19
3:
    brk #0
    .cfi_endproc
END_FUNCTION(spindle_fiber_start)

GNU_STACK_NOTE
