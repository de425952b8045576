//! [`TaskId`]: a task's identifier, unique in the process.

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// A task's identifier: unique among all tasks of the process for as long
/// as it runs (ids are never reused).
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let h = spindle::spawn(|| spindle::current().id());
///     let id = h.id();
///     assert_eq!(h.join().unwrap(), id);
///     assert_ne!(id, spindle::current().id());
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TaskId(NonZeroU64);

/// Ids are handed out in blocks of this many, so that spawning does not
/// touch the shared counter.
const ID_BLOCK: u64 = 1024;
static NEXT_ID_BLOCK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The next id, and the end of this thread's block.
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

impl TaskId {
    pub(crate) fn next() -> TaskId {
        IDS.with(|ids| {
            let (mut next, mut end) = ids.get();
            if next == end {
                next = NEXT_ID_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed);
                end = next + ID_BLOCK;
            }
            ids.set((next + 1, end));
            TaskId(NonZeroU64::new(next).expect("task ids start at 1"))
        })
    }

    /// The id as a number.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| assert!(spindle::current().id().as_u64().get() > 0));
    /// ```
    pub fn as_u64(&self) -> NonZeroU64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
