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
pub mod io;
pub mod net;
pub mod process;
pub mod runtime;
pub mod signal;
pub mod stack;
pub mod sync;

pub use coroutine::{Coroutine, CoroutineResult, Yielder};
pub use generator::{Generator, YieldFrom};
pub use greenlet::Greenlet;
pub use runtime::{
    current, gather, join_all, park, run, sleep, sleep_until, spawn, spawn_blocking, tasks,
    timeout, wait_any, yield_now, Builder, Elapsed, FiberLocal, Gather, JoinError, JoinHandle,
    Runtime, Task, TaskId, TaskState,
};
pub use stack::Stack;
