//! [`Core`]: the state all fibers of one scheduler share, behind the
//! scheduler's `RefCell` — the task table, each task's hot bytes, the run
//! queue, the sleep queue, and the counters.
//!
//! Its fields are visible to the scheduler's own files only; the tiers
//! above reach them through the scheduler's methods (and those, through
//! `wait.rs`).

use std::panic::Location;
use std::sync::Arc;
use std::time::Instant;

use crate::runtime::task::{Cancel, Key, LocalMap, Slab, TaskId, TaskInfo, TaskState, WaitingOn};

use super::run_queue::RunQueue;
use super::sleep_queue::SleepQueue;

/// The two bytes of a task that every switch reads or writes, kept apart
/// from its [`TaskRecord`] in a dense array (`Core::hot`, indexed like the
/// task table) so that a yield touches them and not the record's cache
/// line: with 10,000 fibers that is 20 KB instead of 560 KB.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hot {
    pub(super) state: TaskState,
    pub(super) cancel: Cancel,
}

/// What the scheduler knows of one task, apart from its [`Hot`] bytes.
pub(super) struct TaskRecord {
    pub(super) id: TaskId,
    pub(super) name: Option<Arc<str>>,
    /// Sequence number of this task's live sleep-queue entry; 0 for none.
    pub(super) timer: u64,
    /// Readiness the reactor reported for this task's fd wait; 0 for none.
    pub(super) io_events: u32,
    /// What it waits on while parked, for reports.
    pub(super) waiting_on: WaitingOn,
    /// The token of [`park`](crate::park): set by `unpark`, taken by `park`.
    pub(super) unparked: bool,
    /// Its fiber-local values, allocated on first use (a fiber that uses
    /// none pays one null pointer); taken out by its root as it ends.
    pub(super) locals: Option<Box<LocalMap>>,
    /// Where it was spawned (the `#[track_caller]` location), for dumps.
    pub(super) spawned_at: &'static Location<'static>,
    /// The run-queue number of the entry its spawn pushed (`run_queue.rs`):
    /// while that entry is still queued, the task has not started, and a
    /// hand-off can find it there.
    pub(super) spawn_seq: u64,
}

impl TaskRecord {
    pub(super) fn new(
        id: TaskId,
        name: Option<Arc<str>>,
        spawned_at: &'static Location<'static>,
    ) -> TaskRecord {
        TaskRecord {
            id,
            name,
            spawned_at,
            timer: 0,
            io_events: 0,
            waiting_on: WaitingOn::Nothing,
            unparked: false,
            locals: None,
            spawn_seq: u64::MAX,
        }
    }
}

/// How many hand-offs may run in a row, after a fiber taken from the run
/// queue, before the queue gets its turn again (the runtime docs,
/// "Scheduling order"). Large enough that a tree of spawns and joins runs
/// depth first (skynet's 1.1M fibers: 16k started at once at most,
/// against 111k in FIFO order), small enough that a fiber waiting in the
/// queue is passed over by at most this many resumes per fiber ahead of it.
pub(super) const HAND_OFF_LIMIT: u32 = 64;

/// The state all of a scheduler's fibers share; see the module docs.
pub(super) struct Core {
    pub(super) tasks: Slab<TaskRecord>,
    /// `hot[k.index()]` belongs to the task `k` while it is in `tasks`;
    /// other entries are leftovers, never read (every reader either holds
    /// a key known to be live, or checks it against `tasks` first).
    pub(super) hot: Vec<Hot>,
    pub(super) run_queue: RunQueue,
    pub(super) sleep_queue: SleepQueue,
    /// Set while the runtime unwinds its remaining fibers.
    pub(super) shutting_down: bool,
    /// Set when a cancel could not be delivered because the thread was
    /// panicking (see `checkpoint`); `poll` then re-wakes the cancelled
    /// fibers once it is not.
    pub(super) deferred_cancels: bool,
    /// The task to run right after the running one (a hand-off), if any:
    /// `Ready`, and in no run-queue entry.
    pub(super) hand_off: Option<Key>,
    /// Hand-offs run since the last task taken from the run queue.
    pub(super) hand_offs: u32,
    /// Tasks spawned so far, the main fibers included.
    pub(super) spawned: u64,
    /// Tasks finished so far; also the finish order stamped on join slots.
    pub(super) finished: u64,
}

impl Core {
    pub(super) fn new() -> Core {
        Core {
            tasks: Slab::new(),
            hot: Vec::new(),
            run_queue: RunQueue::new(),
            sleep_queue: SleepQueue::new(),
            shutting_down: false,
            deferred_cancels: false,
            hand_off: None,
            hand_offs: 0,
            spawned: 0,
            finished: 0,
        }
    }

    /// The hot bytes of a task whose key is known to be live (the running
    /// task's, or one popped from the run queue), without asking the task
    /// table.
    #[inline(always)]
    pub(super) fn hot_live(&mut self, key: Key) -> &mut Hot {
        debug_assert!(self.tasks.get(key).is_some(), "stale key {key:?}");
        &mut self.hot[key.index()]
    }

    /// The hot bytes of the task `key`, if it is still alive.
    #[inline]
    pub(super) fn hot(&mut self, key: Key) -> Option<&mut Hot> {
        self.tasks.get(key)?;
        Some(&mut self.hot[key.index()])
    }

    /// The record of the running task `key` (which always has one).
    #[inline(always)]
    pub(super) fn running(&mut self, key: Key) -> &mut TaskRecord {
        self.tasks
            .get_mut(key)
            .expect("a running task has a record")
    }

    /// Makes a parked task ready. A task that is ready or running already,
    /// or gone, is left alone: wake-ups are idempotent.
    #[inline]
    pub(super) fn wake(&mut self, key: Key) {
        if let Some(h) = self.hot(key) {
            if h.state.is_parked() {
                h.state = TaskState::Ready;
                self.run_queue.push(key);
            }
        }
    }

    /// Whether a hand-off may be made now: none is pending, the chain is
    /// under [`HAND_OFF_LIMIT`], and the runtime is not shutting down.
    #[inline]
    fn may_hand_off(&self) -> bool {
        self.hand_off.is_none() && self.hand_offs < HAND_OFF_LIMIT && !self.shutting_down
    }

    /// Makes the parked task `key` ready as the one to run right after the
    /// running task (which is finishing and was what `key` waited for), or
    /// at the back of the queue as any wake-up if no hand-off may be made.
    #[inline]
    pub(super) fn wake_next(&mut self, key: Key) {
        if !self.may_hand_off() {
            return self.wake(key);
        }
        if let Some(h) = self.hot(key) {
            if h.state.is_parked() {
                h.state = TaskState::Ready;
                self.hand_off = Some(key);
            }
        }
    }

    /// If the task `key` has not started (it is still in the run-queue
    /// entry of its spawn), takes it out of the queue as the one to run
    /// right after the running task, which is about to wait for it.
    pub(super) fn hand_off_unstarted(&mut self, key: Key) {
        if !self.may_hand_off() {
            return;
        }
        let Some(t) = self.tasks.get(key) else {
            return;
        };
        let seq = t.spawn_seq;
        if self.hot[key.index()].state == TaskState::Ready && self.run_queue.take_at(seq, key) {
            self.hand_off = Some(key);
        }
    }

    /// Marks a task cancelled and wakes it if it is parked.
    pub(super) fn cancel(&mut self, key: Key) {
        if let Some(h) = self.hot(key) {
            h.cancel = Cancel::Pending;
            self.wake(key);
        }
    }

    /// Sets the timer of the running task `key` for `deadline`.
    pub(super) fn set_timer(&mut self, key: Key, deadline: Instant) {
        let seq = self.sleep_queue.insert(deadline, key);
        self.running(key).timer = seq;
    }

    /// Whether the timer of task `key` has fired (or the task is gone).
    pub(super) fn timer_fired(&self, key: Key) -> bool {
        self.tasks.get(key).map_or(true, |t| t.timer == 0)
    }

    /// Abandons the timer of task `key`, if it has one that has not fired.
    pub(super) fn drop_timer(&mut self, key: Key) {
        let Some(t) = self.tasks.get_mut(key) else {
            return;
        };
        if t.timer != 0 {
            t.timer = 0;
            let tasks = &self.tasks;
            self.sleep_queue
                .abandon(|k, seq| tasks.get(k).is_some_and(|t| t.timer == seq));
        }
    }

    /// The task `key` as a report shows it.
    pub(super) fn info(&self, key: Key) -> Option<TaskInfo> {
        let t = self.tasks.get(key)?;
        Some(TaskInfo {
            id: t.id,
            name: t.name.clone(),
            state: self.hot[key.index()].state,
            waiting_on: t.waiting_on,
        })
    }

    /// The deadline of every live timer, by task (for dumps: one walk of
    /// the sleep queue).
    pub(super) fn deadlines(&self) -> std::collections::HashMap<Key, Instant> {
        self.sleep_queue
            .entries()
            .filter(|&(k, seq, _)| self.tasks.get(k).is_some_and(|t| t.timer == seq))
            .map(|(k, _, d)| (k, d))
            .collect()
    }

    /// Every live task with its key, in id order.
    pub(super) fn infos(&self) -> Vec<(Key, TaskInfo)> {
        let mut v: Vec<_> = self
            .tasks
            .iter()
            .filter_map(|(k, _)| Some((k, self.info(k)?)))
            .collect();
        v.sort_unstable_by_key(|(_, t)| t.id);
        v
    }
}
