/*
 * header.h - platform boilerplate shared by x86_64.S and aarch64.S.
 *
 * Both files are preprocessed by the C compiler (capital .S), so they can use
 * these macros. Everything here is ELF/Linux specific; the build script refuses
 * every other target before this file is ever read.
 *
 *   FUNCTION(name)      opens a global function symbol. It is .hidden: the
 *                       symbols are visible to the Rust code linked into the
 *                       same program, never exported from a shared object, so
 *                       two programs cannot interpose each other's switch.
 *   END_FUNCTION(name)  records the symbol's size, so debuggers and profilers
 *                       can attribute every instruction to it.
 *   GNU_STACK_NOTE      the footer: tells the linker this object does not need
 *                       an executable stack (without it, ld warns and may
 *                       make the whole program's stack executable).
 */
#ifndef SPINDLE_ASM_HEADER_H
#define SPINDLE_ASM_HEADER_H

#define FUNCTION(name)            \
    .text;                        \
    .balign 16;                   \
    .globl name;                  \
    .hidden name;                 \
    .type name, %function;        \
    name:

#define END_FUNCTION(name) \
    .size name, . - name

#define GNU_STACK_NOTE \
    .section .note.GNU-stack, "", %progbits

#endif
