//! The drivers: what a scheduler asks the kernel for, and how other
//! threads reach it.
//!
//! - [`reactor`]: the epoll set, fd readiness for waits and sources, and
//!   where a scheduler blocks when no fiber is ready.
//! - [`remote`]: the eventfd in that epoll set and the queue of wake-ups
//!   other threads send through it.
//! - [`idle`]: the idle count a runtime's workers share, which finds a
//!   deadlock that spans them.
//!
//! The second tier of `src/runtime/` (see the runtime's module docs,
//! "Tiers"): drivers speak the vocabulary of [`task`](super::task) (a
//! waiter is a task [`Key`](super::task::Key)) and know nothing of the
//! scheduler that owns them.

pub(crate) mod idle;
pub(crate) mod reactor;
pub(crate) mod remote;

pub(crate) use idle::{AllIdle, Idle};
pub(crate) use reactor::{context, Interest, Poller, Reactor, CLOSED};
pub(crate) use remote::{Message, Remote, RemoteWaker};
