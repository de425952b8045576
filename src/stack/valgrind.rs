//! valgrind client requests (cargo feature `valgrind`): tells valgrind which
//! memory is a fiber stack, so that a context switch is seen as a switch and
//! not as one enormous stack frame.
//!
//! Without this, valgrind sees the stack pointer jump by megabytes at every
//! switch, warns "client switching stacks?", and memcheck marks the memory
//! between the two stack pointers as freshly allocated or freed: every later
//! access to a fiber's frames becomes an "invalid read/write". A program using
//! spindle then gives thousands of false errors (2,126 for `tests/switch.rs`
//! before this module existed). With every stack registered, a jump of the
//! stack pointer into another registered stack is a switch, and memcheck
//! leaves both stacks alone.
//!
//! ## The client-request ABI
//!
//! A *client request* is how a program talks to valgrind without linking
//! anything: a short sequence of instructions that does nothing on a real CPU
//! but that valgrind's translator recognises and replaces by a call into
//! valgrind. The sequence and the request numbers are valgrind's public,
//! stable ABI, defined in the `valgrind.h` header it installs (the
//! `VALGRIND_DO_CLIENT_REQUEST_EXPR` macro for each architecture, and the
//! `Vg_ClientRequest` enumeration); this file writes the same instructions
//! with `asm!` instead of including the header.
//!
//! The program fills an array of six words: the request number, then five
//! arguments. It puts the array's address in one register and a default
//! result in another, then runs a *preamble* of four rotations of a third
//! register by amounts that add up to 128 bits (two full turns: the register
//! ends as it started, so on a real CPU nothing changes but the flags), and a
//! marker instruction that is a no-op (exchanging or or-ing a register with
//! itself). Under valgrind the result register then holds valgrind's answer;
//! natively it still holds the default.
//!
//! | | array address | default / result | rotated | marker |
//! |---|---|---|---|---|
//! | x86_64 | `rax` | `rdx` | `rdi` by 3, 13, 61, 51 | `xchg rbx, rbx` |
//! | aarch64 | `x4` | `x3` | `x12` by 3, 13, 51, 61 | `orr x10, x10, x10` |
//!
//! The requests used here, from the core (not tool-specific) range:
//!
//! | request | number | arguments | result |
//! |---|---|---|---|
//! | `STACK_REGISTER` | `0x1501` | lowest and highest addressable byte | a stack id |
//! | `STACK_DEREGISTER` | `0x1502` | the id | none |
//! | memcheck's `MAKE_MEM_NOACCESS` | `0x4d430000` | start, length | none |
//! | memcheck's `MAKE_MEM_DEFINED` | `0x4d430002` | start, length | none |
//!
//! (memcheck's requests are numbered from its tool base, the letters `M`
//! and `C` in the top two bytes; other tools ignore them.)
//!
//! ## Memcheck and threads
//!
//! valgrind remembers *one* current stack for the whole process, not one per
//! thread. When two threads run fibers, a stack-pointer change in one thread
//! that valgrind cannot size statically (a frame realigned with `and rsp`, a
//! variable-length allocation) may be compared with the other thread's
//! stack, taken for a switch, and not tracked: the frame it opens is then
//! not marked addressable. On a stack whose earlier frames were popped (and
//! so marked inaccessible), its first writes would be reported as invalid.
//! So every stack handed out is marked addressable as a whole. Its
//! contents are marked defined, because they are: zeros when it is fresh or
//! was discarded, its last user's bytes when it was retained or pooled (see
//! the module invariants); memcheck still marks each new frame undefined as
//! the fiber pushes it. A dropped stack is marked inaccessible until it is
//! handed out again, so memcheck reports any use of a finished fiber's
//! stack.
//!
//! ## Cost
//!
//! Natively, a request is about ten instructions (the array stores, four
//! rotations, the no-op); a [`Stack`](super::Stack) makes two when it is
//! handed out and two when it is dropped, none per switch.
//!
//! ## Invariants
//!
//! - Every `Stack` value holds a registration of exactly its usable range,
//!   made when it was handed out (fresh from a chunk or reused from a pool)
//!   and removed when it is dropped, before its slot goes to a pool or back to
//!   the allocator. A slot waiting in a pool is not registered: nobody runs on
//!   it, and its next owner registers it again.

/// `STACK_REGISTER`: arguments (lowest byte, highest byte), returns an id.
const STACK_REGISTER: usize = 0x1501;
/// `STACK_DEREGISTER`: argument (id).
const STACK_DEREGISTER: usize = 0x1502;
/// `CHANGE_ERR_DISABLEMENT`: argument (+1 or -1), this thread's error
/// reporting off or back on (nested).
const CHANGE_ERR_DISABLEMENT: usize = 0x1801;
/// memcheck's tool base: `'M' << 24 | 'C' << 16`.
const MEMCHECK_BASE: usize = (b'M' as usize) << 24 | (b'C' as usize) << 16;
/// memcheck's `MAKE_MEM_NOACCESS`: arguments (start, length).
const MAKE_MEM_NOACCESS: usize = MEMCHECK_BASE;
/// memcheck's `MAKE_MEM_DEFINED`: arguments (start, length).
const MAKE_MEM_DEFINED: usize = MEMCHECK_BASE + 2;

/// Sends a client request; returns valgrind's answer, or `default` when not
/// running under valgrind.
#[inline(always)]
fn client_request(default: usize, request: usize, arg1: usize, arg2: usize) -> usize {
    let args: [usize; 6] = [request, arg1, arg2, 0, 0, 0];
    let result: usize;
    // SAFETY: natively the sequence only rotates rdi by 128 bits in all (it
    // ends unchanged) and exchanges rbx with itself; flags change (the block
    // does not claim to preserve them). Under valgrind it reads the six
    // words at rax, which stay alive for the block, and writes rdx.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inlateout("rdx") default => result,
            options(nostack, readonly),
        );
    }
    // SAFETY: natively the sequence only rotates x12 by 128 bits in all (it
    // ends unchanged) and or-s x10 with itself, touching no flags. Under
    // valgrind it reads the six words at x4, which stay alive for the
    // block, and writes x3.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!(
            "ror x12, x12, #3",
            "ror x12, x12, #13",
            "ror x12, x12, #51",
            "ror x12, x12, #61",
            "orr x10, x10, x10",
            in("x4") args.as_ptr(),
            inlateout("x3") default => result,
            options(nostack, readonly, preserves_flags),
        );
    }
    result
}

/// A stack's registration with valgrind; deregistered by
/// [`deregister`](Registration::deregister).
#[derive(Debug)]
pub(super) struct Registration {
    id: usize,
}

impl Registration {
    /// Registers `limit..base` (the usable bytes) as a stack, addressable
    /// and defined.
    #[inline]
    pub(super) fn register(limit: *mut u8, base: *mut u8) -> Registration {
        let (start, len) = (limit as usize, base as usize - limit as usize);
        client_request(0, MAKE_MEM_DEFINED, start, len);
        // valgrind takes the highest addressable byte, not the end.
        Registration {
            id: client_request(0, STACK_REGISTER, start, start + len - 1),
        }
    }

    /// Removes the registration of `limit..base` and marks it inaccessible:
    /// call when the stack is dropped, before its slot can be reused.
    #[inline]
    pub(super) fn deregister(&self, limit: *mut u8, base: *mut u8) {
        client_request(0, STACK_DEREGISTER, self.id, 0);
        let (start, len) = (limit as usize, base as usize - limit as usize);
        client_request(0, MAKE_MEM_NOACCESS, start, len);
    }
}

/// Turns valgrind's error reports off on this thread while it lives: the
/// stack high-water mark reads and erases a suspended fiber's dead bytes
/// below its stack pointer on purpose (`high_water.rs`), which memcheck
/// would report as invalid accesses.
pub(super) struct QuietErrors(());

impl QuietErrors {
    /// Reports off until the value is dropped.
    #[inline]
    pub(super) fn new() -> QuietErrors {
        client_request(0, CHANGE_ERR_DISABLEMENT, 1, 0);
        QuietErrors(())
    }
}

impl Drop for QuietErrors {
    fn drop(&mut self) {
        // -1, as the word valgrind reads it.
        client_request(0, CHANGE_ERR_DISABLEMENT, usize::MAX, 0);
    }
}
