//! # spindle
//!
//! Stackful fibers for Linux on x86_64 and aarch64, built on a context switch
//! written by hand in assembly (`asm/x86_64.S`, `asm/aarch64.S`).
//!
//! The crate is layered; each layer uses only the ones above it in this list,
//! and reading them in this order explains the whole:
//!
//! | layer | module | what it owns |
//! |---|---|---|
//! | context switch | `arch` (private) | saving callee-saved state, switching stacks |
//! | stacks | [`stack`] | mmap'd stacks with a guard region, the pool, overflow reports |
//! | coroutine | [`coroutine`], [`generator`], [`greenlet`] | resume/suspend with values, iterators, symmetric switch |
//! | scheduler | [`runtime`] | fibers as tasks: round robin, timers, fd readiness, join and cancel |
//! | library | [`sync`], [`net`], [`io`], [`process`], [`signal`] | channels and locks that park the fiber; sockets, fds, child processes and signals that wait on the reactor |
//! | hooks (feature `hook`) | `hook` | blocking libc calls made in a fiber (sleep, socket I/O) park it; pass-through elsewhere |
//!
//! ## Example
//!
//! ```
//! use spindle::coroutine::{Coroutine, CoroutineResult};
//!
//! let mut co = Coroutine::new(|yielder, first: i32| {
//!     let second = yielder.suspend(first * 10);
//!     first + second
//! });
//! assert_eq!(co.resume(4), CoroutineResult::Yield(40));
//! assert_eq!(co.resume(5), CoroutineResult::Return(9));
//! assert!(co.done());
//! ```
//!
//! ## Features
//!
//! - **`fp-env`** (off by default): the context switch also saves and
//!   restores the floating-point control state (MXCSR and the x87 control
//!   word on x86_64, FPCR on aarch64), and a new fiber starts with its first
//!   resumer's. Without it the switch leaves that state alone, as
//!   corosensei, wasmtime's fibers and Go do: Rust assumes the default
//!   floating-point environment (since Rust 1.75 the docs of
//!   `core::arch::x86_64::_mm_setcsr` call changing the rounding mode,
//!   exception masks or denormal flushing undefined behaviour), and a switch
//!   happens only inside a Rust call (`resume`, `suspend`), where a sound
//!   program is in that default environment on both sides. Enable it for C
//!   code that changes the environment and switches fibers while it is
//!   changed. On x86_64 it makes a round trip about 3.6 times slower on
//!   the AMD EPYC measured (6.8 ns instead of 1.9 ns: `stmxcsr` is
//!   microcoded there); `BENCHMARKS.md` has the figures.
//! - **`hook`**: blocking libc calls made inside a fiber (`std::thread::sleep`,
//!   `std::net` sockets, `poll`) park the fiber instead of the thread, as
//!   gevent's monkey patching does; see the `hook` module (built only with
//!   the feature) for the calls, the semantics kept and the limits.
//! - **`valgrind`**: registers every fiber stack with valgrind (client requests
//!   written inline, no dependency), so programs run under memcheck without
//!   false reports. A few instructions per stack created and dropped.
//! - **`asan`**: AddressSanitizer's fiber-switch annotations are compiled in by
//!   themselves in any `-Zsanitizer=address` build; this feature makes a
//!   build without the sanitizer fail with a message instead.
//!
//! The repository's `docs/sanitizers.md` says how to run a program under
//! each tool, and what `panic = "abort"` changes.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("spindle supports Linux on x86_64 and aarch64 only");

mod arch;
pub mod coroutine;
pub mod generator;
pub mod greenlet;
#[cfg(feature = "hook")]
pub mod hook;
pub mod io;
pub mod net;
pub mod process;
pub mod runtime;
pub mod signal;
pub mod stack;
pub mod sync;
mod sys;

pub use coroutine::{Coroutine, CoroutineResult, Yielder};
pub use generator::{Generator, YieldFrom};
pub use greenlet::Greenlet;
pub use runtime::{
    current, dump, gather, join_all, park, run, sleep, sleep_until, spawn, spawn_blocking, tasks,
    timeout, wait_any, yield_now, Builder, Dump, DumpHandle, Elapsed, FiberDump, FiberLocal, Frame,
    Gather, JoinError, JoinHandle, Runtime, Task, TaskId, TaskState,
};
pub use runtime::{
    current_worker, spawn_balanced, spawn_on, worker_count, PlacedBuilder, SendJoinHandle,
};
pub use runtime::{
    task_stats, BlockedFiber, BlockedPhase, FiberEvent, FiberEventKind, RuntimeStats, TaskStats,
};
pub use stack::Stack;
