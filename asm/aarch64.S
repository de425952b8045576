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
 * reads or writes it. AAPCS64 does not ask calls to preserve FPCR (rounding
 * mode) beyond what the platform does, and spindle does not switch it.
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
 * THE TWO KINDS OF SAVED FRAME (src/arch/aarch64.rs mirrors both)
 *
 * The resumer's frame (160 bytes), pushed by spindle_resume: everything a
 * call must preserve.
 *
 *      offset  contents
 *      ------  -------------------
 *        +0    d8,  d9
 *       +16    d10, d11
 *       +32    d12, d13
 *       +48    d14, d15
 *       +64    x19, x20
 *       +80    x21, x22
 *       +96    x23, x24
 *      +112    x25, x26
 *      +128    x27, x28
 *      +144    x29, x30 (x30 = the resumer's return address)
 *      +160    (the CFA)
 *
 * The fiber's frame (32 bytes), pushed by spindle_suspend. The fiber's
 * inline asm declares x20-x28 and v8-v15 clobbered, so the compiler saves
 * the ones it uses; the assembly saves what an asm! block cannot declare:
 * x19 (LLVM's base pointer), x29 (the frame pointer), sp, and x30 as the
 * resume address.
 *
 *      offset  contents
 *      ------  -------------------
 *        +0    x19, (unused)
 *       +16    x29, x30 (x30 = resume address)
 *       +32    (the CFA)
 *
 * In both, x29 and x30 sit together at the top, in that order, so they form
 * an ordinary AAPCS64 frame record for frame-pointer walkers.
 *
 * The stack diagrams of x86_64.S hold here with these frames in place of
 * the x86_64 ones. In a fresh stack's fiber frame: x30 = spindle_fiber_start,
 * x19 = the entry function, x29 = data; after it is popped, sp = the parent
 * link's address.
 *
 * BTI: the jumps into a context (`br x30`) would need `bti j` landing pads on
 * a system that enforces Branch Target Identification. This object does not
 * carry the BTI property note, so the linker never enables BTI for a program
 * that contains it.
 */

#include "header.h"

/* Save the callee-saved registers into a 160-byte resumer frame just
 * reserved at sp, with the CFI for each pair (offsets are from the CFA,
 * which must already be sp + 160). */
.macro SAVE_FRAME
    stp x29, x30, [sp, #144]
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    stp x27, x28, [sp, #128]
    .cfi_offset x27, -32
    .cfi_offset x28, -24
    stp x25, x26, [sp, #112]
    .cfi_offset x25, -48
    .cfi_offset x26, -40
    stp x23, x24, [sp, #96]
    .cfi_offset x23, -64
    .cfi_offset x24, -56
    stp x21, x22, [sp, #80]
    .cfi_offset x21, -80
    .cfi_offset x22, -72
    stp x19, x20, [sp, #64]
    .cfi_offset x19, -96
    .cfi_offset x20, -88
    stp d14, d15, [sp, #48]
    .cfi_offset d14, -112
    .cfi_offset d15, -104
    stp d12, d13, [sp, #32]
    .cfi_offset d12, -128
    .cfi_offset d13, -120
    stp d10, d11, [sp, #16]
    .cfi_offset d10, -144
    .cfi_offset d11, -136
    stp d8, d9, [sp, #0]
    .cfi_offset d8, -160
    .cfi_offset d9, -152
.endm

/* Load the resumer frame at sp back into the callee-saved registers and
 * release it. Kept as a macro so its two users stay identical.
 * (No CFI: from here on the unwinder keeps describing the frame that was
 * just saved, through the register that .cfi_def_cfa names.) */
.macro RESTORE_FRAME
    ldp d8, d9, [sp, #0]
    ldp d10, d11, [sp, #16]
    ldp d12, d13, [sp, #32]
    ldp d14, d15, [sp, #48]
    ldp x19, x20, [sp, #64]
    ldp x21, x22, [sp, #80]
    ldp x23, x24, [sp, #96]
    ldp x25, x26, [sp, #112]
    ldp x27, x28, [sp, #128]
    ldp x29, x30, [sp, #144]
    add sp, sp, #160
.endm

/* ------------------------------------------------------------------------
 * Transfer spindle_resume(usize arg, *mut u8 fiber_sp, *mut *mut u8 link)
 *
 *   Rust: extern "C" fn spindle_resume(arg: usize, sp: *mut u8,
 *                                      link: *mut *mut u8) -> Transfer
 *   The 16-byte Transfer comes back in x0 (arg) and x1 (sp, 0 = finished).
 *
 * Contract: as on x86_64. Called with `bl`; enters the fiber with x0 = arg.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_resume)
    .cfi_startproc
    /* x0 = arg, x1 = fiber's saved sp, x2 = &parent link,
     * x30 = our return address. */
    sub sp, sp, #160
    .cfi_def_cfa_offset 160
    SAVE_FRAME
    /* Publish our frame in the link; x3 keeps it for the unwinder. */
    mov x3, sp
    str x3, [x2]
    .cfi_def_cfa x3, 160
    mov sp, x1
    /* Pop the fiber frame. */
    ldr x19, [sp, #0]
    ldp x29, x30, [sp, #16]
    add sp, sp, #32
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
 * Contract: as on x86_64; pushes a fiber frame, pops the resumer frame;
 * spindle_resume returns x0 = arg, x1 = our sp.
 * ---------------------------------------------------------------------- */
FUNCTION(spindle_suspend)
    .cfi_startproc
    /* Push the fiber frame. */
    sub sp, sp, #32
    .cfi_def_cfa_offset 32
    stp x29, x30, [sp, #16]
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    str x19, [sp, #0]
    .cfi_offset x19, -32
    mov x2, sp
    .cfi_def_cfa x2, 32
    ldr x3, [x1]
    mov sp, x3
    RESTORE_FRAME
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
    RESTORE_FRAME
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
    /* CFA = *(sp + 0) + 160. The bytes:
     *   0x0f        DW_CFA_def_cfa_expression
     *   6           the expression is 6 bytes long:
     *   0x8f 0x00     DW_OP_breg31 (sp) + 0   -> address of the parent link
     *   0x06          DW_OP_deref             -> the resumer's saved sp
     *   0x23 0xa0 0x01  DW_OP_plus_uconst 160 (ULEB128: 0x20|0x80, 0x01)
     * Unlike x86_64, sp does not move in this function, so the one rule
     * is exact at every instruction. */
    .cfi_escape 0x0f, 6, 0x8f, 0x00, 0x06, 0x23, 0xa0, 0x01
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    .cfi_offset x27, -32
    .cfi_offset x28, -24
    .cfi_offset x25, -48
    .cfi_offset x26, -40
    .cfi_offset x23, -64
    .cfi_offset x24, -56
    .cfi_offset x21, -80
    .cfi_offset x22, -72
    .cfi_offset x19, -96
    .cfi_offset x20, -88
    .cfi_offset d14, -112
    .cfi_offset d15, -104
    .cfi_offset d12, -128
    .cfi_offset d13, -120
    .cfi_offset d10, -144
    .cfi_offset d11, -136
    .cfi_offset d8, -160
    .cfi_offset d9, -152
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
