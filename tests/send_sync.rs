//! `Send` and `Sync` of every public type, checked at compile time both
//! ways (the way tokio's `async_send_sync.rs` does it).
//!
//! - A type that must be `Send` (or `Sync`) is passed to a function that
//!   requires it: the file stops compiling if it loses the trait.
//! - A type that must *not* be `Send` (or `Sync`) calls a method of a trait
//!   with two blanket impls, one for every type and one for `Send` types
//!   only. For a type that is not `Send`, only the first applies and the
//!   call resolves; for one that is, both apply and the call is ambiguous,
//!   so the file stops compiling if the type *gains* the trait. (A
//!   `compile_fail` doctest would also pass on any unrelated error.)
//!
//! Every check is a `const` closure that is never called: compiling this
//! file (which `cargo test` does) is the test, so it holds no `#[test]`.
//!
//! Generic types are checked with `u32` parameters (`Send + Sync`), so
//! what is checked is the type's own choice; where a type passes its
//! parameters' traits on, a second line checks that with an `Rc` (neither).
//! Not listed: the traits (`YieldFrom`), and the error types `spindle::sync`
//! re-exports from `std::sync::mpsc`.
#![allow(dead_code, clippy::type_complexity)]

use std::net::TcpStream as StdTcpStream;
use std::rc::Rc;

use spindle::coroutine::{self, Coroutine, CoroutineResult, Yielder};
use spindle::generator::Generator;
use spindle::greenlet::Greenlet;
use spindle::io::Async;
use spindle::net::{
    Incoming, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixIncoming, UnixListener,
    UnixStream,
};
use spindle::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use spindle::runtime::{
    Builder, Dump, Elapsed, FiberDump, FiberLocal, Frame, Gather, JoinError, JoinHandle,
    PlacedBuilder, Runtime, RuntimeBuilder, RuntimeStats, SendJoinHandle, Task, TaskId, TaskState,
};
use spindle::signal::{self, Signals};
use spindle::stack::{GuardKind, Stack, StackError, StackPool, StackStats};
use spindle::sync::{
    shared, Barrier, BarrierWaitResult, Condvar, Event, IntoIter, Iter, Mutex, MutexGuard,
    OnceCell, Receiver, RwLock, RwLockReadGuard, RwLockWriteGuard, Select, SelectTimeoutError,
    SelectedOperation, Semaphore, SemaphorePermit, Sender, SyncSender, TryIter, TrySelectError,
    WaitGroup, WaitTimeoutResult,
};
use spindle::{BlockedFiber, BlockedPhase, FiberEvent, FiberEventKind, TaskStats};

fn require_send<T: Send>() {}
fn require_sync<T: Sync>() {}

/// Never defined; names the second impl below.
struct Invalid;

trait AmbiguousIfSend<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}

trait AmbiguousIfSync<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSync<Invalid> for T {}

macro_rules! assert_value {
    ($type:ty: Send & Sync) => {
        const _: fn() = || {
            require_send::<$type>();
            require_sync::<$type>();
        };
    };
    ($type:ty: !Send & Sync) => {
        const _: fn() = || {
            <$type as AmbiguousIfSend<_>>::some_item();
            require_sync::<$type>();
        };
    };
    ($type:ty: Send & !Sync) => {
        const _: fn() = || {
            require_send::<$type>();
            <$type as AmbiguousIfSync<_>>::some_item();
        };
    };
    ($type:ty: !Send & !Sync) => {
        const _: fn() = || {
            <$type as AmbiguousIfSend<_>>::some_item();
            <$type as AmbiguousIfSync<_>>::some_item();
        };
    };
}

type NotSend = Rc<()>;

// ---- coroutine, generator, greenlet -----------------------------------------
// A fiber never moves to another thread (its code may hold thread-local
// addresses cached across a switch), so nothing that names one is Send.
assert_value!(Coroutine<u32, u32, u32>: !Send & !Sync);
assert_value!(Yielder<u32, u32>: !Send & !Sync);
assert_value!(CoroutineResult<u32, u32>: Send & Sync);
assert_value!(CoroutineResult<NotSend, u32>: !Send & !Sync);
assert_value!(coroutine::Builder: Send & Sync);
assert_value!(Generator<u32, u32, u32>: !Send & !Sync);
assert_value!(Greenlet<u32>: !Send & !Sync);

// ---- runtime ------------------------------------------------------------------
// One thread's scheduler and handles into it stay on that thread; plain data
// (ids, states, stats, builders, errors) may go anywhere.
assert_value!(Runtime: !Send & !Sync);
assert_value!(RuntimeBuilder: Send & Sync);
assert_value!(RuntimeStats: Send & Sync);
assert_value!(TaskStats: Send & Sync);
assert_value!(FiberEvent<'static>: Send & Sync);
assert_value!(FiberEventKind: Send & Sync);
assert_value!(BlockedFiber: Send & Sync);
assert_value!(BlockedPhase: Send & Sync);
assert_value!(Builder: Send & Sync);
assert_value!(JoinHandle<u32>: !Send & !Sync);
assert_value!(JoinError: Send & !Sync);
assert_value!(Elapsed: Send & Sync);
assert_value!(Task: !Send & !Sync);
assert_value!(TaskId: Send & Sync);
assert_value!(TaskState: Send & Sync);
assert_value!(Gather<u32>: !Send & !Sync);
// A fiber-local is a `static`; each value stays with its fiber.
assert_value!(FiberLocal<u32>: Send & Sync);
// A dump is plain data, taken on one worker and printed anywhere.
assert_value!(Dump: Send & Sync);
assert_value!(FiberDump: Send & Sync);
assert_value!(Frame: Send & Sync);
// The multi-core layer: a placed spawn's handle and builder cross threads.
assert_value!(SendJoinHandle<u32>: Send & Sync);
assert_value!(PlacedBuilder: Send & Sync);

// ---- sync -----------------------------------------------------------------------
// One runtime, one thread: shared between fibers with Rc, never between
// threads (see the spindle::sync docs).
assert_value!(Mutex<u32>: !Send & !Sync);
assert_value!(MutexGuard<'static, u32>: !Send & !Sync);
assert_value!(Semaphore: !Send & !Sync);
assert_value!(SemaphorePermit<'static>: !Send & !Sync);
assert_value!(Condvar: !Send & !Sync);
assert_value!(WaitTimeoutResult: Send & Sync);
assert_value!(Barrier: !Send & !Sync);
assert_value!(BarrierWaitResult: Send & Sync);
assert_value!(WaitGroup: !Send & !Sync);
assert_value!(Sender<u32>: !Send & !Sync);
assert_value!(SyncSender<u32>: !Send & !Sync);
assert_value!(Receiver<u32>: !Send & !Sync);
assert_value!(Iter<'static, u32>: !Send & !Sync);
assert_value!(TryIter<'static, u32>: !Send & !Sync);
assert_value!(IntoIter<u32>: !Send & !Sync);
assert_value!(RwLock<u32>: !Send & !Sync);
assert_value!(RwLockReadGuard<'static, u32>: !Send & !Sync);
assert_value!(RwLockWriteGuard<'static, u32>: !Send & !Sync);
assert_value!(Event: !Send & !Sync);
assert_value!(OnceCell<u32>: !Send & !Sync);
assert_value!(Select<'static>: !Send & !Sync);
assert_value!(SelectedOperation<'static>: !Send & !Sync);
assert_value!(TrySelectError: Send & Sync);
assert_value!(SelectTimeoutError: Send & Sync);
// `sync::shared` crosses workers and plain threads, as std's channel does.
assert_value!(shared::Sender<u32>: Send & Sync);
assert_value!(shared::Receiver<u32>: Send & !Sync);
assert_value!(shared::Receiver<NotSend>: !Send & !Sync);
assert_value!(shared::Sender<NotSend>: !Send & !Sync);
assert_value!(shared::SyncSender<u32>: Send & Sync);
assert_value!(shared::SyncSender<NotSend>: !Send & !Sync);
// Its locks are std's: Send and Sync when the value is Send; a guard stays
// where the lock was taken (!Send) and is Sync when the value is.
assert_value!(shared::Mutex<u32>: Send & Sync);
assert_value!(shared::Mutex<std::cell::Cell<u32>>: Send & Sync);
assert_value!(shared::Mutex<NotSend>: !Send & !Sync);
assert_value!(shared::MutexGuard<'static, u32>: !Send & Sync);
assert_value!(shared::MutexGuard<'static, std::cell::Cell<u32>>: !Send & !Sync);
assert_value!(shared::Semaphore: Send & Sync);
assert_value!(shared::SemaphorePermit<'static>: Send & Sync);
assert_value!(shared::WaitGroup: Send & Sync);

// ---- net, io ----------------------------------------------------------------------
// Sockets and `Async` may move to another thread (and runtime) when their
// inner value can; they are not Sync (one fiber uses one at a time).
assert_value!(TcpStream: Send & !Sync);
assert_value!(TcpListener: Send & !Sync);
assert_value!(UdpSocket: Send & !Sync);
assert_value!(Incoming<'static>: !Send & !Sync);
assert_value!(UnixStream: Send & !Sync);
assert_value!(UnixListener: Send & !Sync);
assert_value!(UnixDatagram: Send & !Sync);
assert_value!(UnixIncoming<'static>: !Send & !Sync);

// ---- process, signal ----------------------------------------------------------------
// A child and its pipes move like sockets; the command is plain data. A
// signal set belongs to the thread whose mask it changed.
assert_value!(Command: Send & Sync);
assert_value!(Child: Send & !Sync);
assert_value!(ChildStdin: Send & !Sync);
assert_value!(ChildStdout: Send & !Sync);
assert_value!(ChildStderr: Send & !Sync);
assert_value!(Signals: !Send & !Sync);
assert_value!(signal::Iter<'static>: !Send & !Sync);
assert_value!(Async<StdTcpStream>: Send & !Sync);
assert_value!(Async<Rc<StdTcpStream>>: !Send & !Sync);

// ---- stack ------------------------------------------------------------------------
assert_value!(Stack: Send & Sync);
assert_value!(StackPool: Send & Sync);
assert_value!(StackStats: Send & Sync);
assert_value!(StackError: Send & Sync);
assert_value!(GuardKind: Send & Sync);
