//! The scheduler's calls into its [`Observer`](crate::runtime::observe::Observer):
//! what the switch does when accounting, fiber events or the watchdog are
//! on (see the `observe` folder's docs). Off, the switch reaches none of
//! this: `run.rs` and `mod.rs` test `Observer::active` once per event.

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::observe::accounting::{Account, TaskStats};
use crate::runtime::observe::clock::now_ns;
use crate::runtime::observe::probe::Label;
use crate::runtime::observe::{BlockedFiber, BlockedPhase, FiberEvent, FiberEventKind};
use crate::runtime::task::{Key, TaskId};
use crate::stack::Stack;

use super::Scheduler;

/// What is left of a task to report its exit, taken before its record goes.
pub(super) struct ExitNote {
    id: TaskId,
    name: Option<Arc<str>>,
    account: Account,
}

impl Scheduler {
    /// The task `key` (id `id`) was just added to the run queue.
    #[inline(never)]
    pub(super) fn observe_spawn(
        &self,
        key: Key,
        id: TaskId,
        name: Option<Arc<str>>,
        spawned_at: &'static Location<'static>,
    ) {
        let o = &self.observer;
        if o.accounting() {
            o.open(key.index(), now_ns());
        }
        if o.on_blocked().is_some() {
            let label = Label {
                id,
                name: name.clone(),
                spawned_at,
            };
            o.probe().label(id.as_u64().get(), label);
        }
        self.emit(FiberEventKind::Spawn, id, name, o.account(key.index()));
    }

    /// The task `key` is about to be resumed.
    #[inline(never)]
    pub(super) fn observe_resume(&self, key: Key) {
        let o = &self.observer;
        let watching = o.on_blocked().is_some();
        if o.accounting() || watching {
            let now = o.start_stamp();
            if o.accounting() {
                o.with_account(key.index(), |a| a.begin(now));
            }
            if watching {
                let id = self.id_of(key).map_or(0, |id| id.as_u64().get());
                o.probe().enter(id, now);
            }
        }
        if o.on_event().is_some() {
            self.emit_for(key, FiberEventKind::Resume);
        }
    }

    /// The resume of task `key` has ended (`finished`: its fiber returned);
    /// called before the resume is counted, and before a finished task is
    /// removed.
    #[inline(never)]
    pub(super) fn observe_suspend(&self, key: Key, finished: bool) {
        let o = &self.observer;
        let watching = o.on_blocked().is_some();
        if o.accounting() || watching {
            let now = o.end_stamp();
            if o.accounting() {
                let (running, parked) = o.with_account(key.index(), |a| a.end(now));
                o.probe().add_times(running, parked);
            }
            if watching {
                o.probe().leave();
                if o.probe().take_flag() {
                    self.report_released(key, finished, now);
                    o.end_round();
                }
            }
        }
        if !finished && o.on_event().is_some() {
            let state = self.core.borrow_mut().hot_live(key).state;
            self.emit_for(key, FiberEventKind::Suspend(state));
        }
    }

    /// Notes what an exit event needs of the task `key`, before its record
    /// is removed.
    pub(super) fn exit_note(&self, key: Key) -> Option<ExitNote> {
        let core = self.core.borrow();
        let t = core.tasks.get(key)?;
        Some(ExitNote {
            id: t.id,
            name: t.name.clone(),
            account: self.observer.account(key.index()),
        })
    }

    /// The task of `note` is gone.
    #[inline(never)]
    pub(super) fn observe_exit(&self, note: ExitNote) {
        if self.observer.on_blocked().is_some() {
            self.observer.probe().unlabel(note.id.as_u64().get());
        }
        self.emit(FiberEventKind::Exit, note.id, note.name, note.account);
    }

    /// Every live task's account, in id order.
    pub(crate) fn task_stats(&self) -> Vec<TaskStats> {
        self.snapshot()
            .into_iter()
            .map(|(key, t)| TaskStats::new(t.id, t.name, &self.observer.account(key.index())))
            .collect()
    }

    /// The watchdog reported the resume of task `key` that ended at `now`:
    /// the worker's half of the report (see `observe/watchdog.rs`).
    #[cold]
    fn report_released(&self, key: Key, finished: bool, now: u64) {
        let Some(hook) = self.observer.on_blocked().cloned() else {
            return;
        };
        let Some((id, name, spawned_at)) = ({
            let core = self.core.borrow();
            core.tasks
                .get(key)
                .map(|t| (t.id, t.name.clone(), t.spawned_at))
        }) else {
            return;
        };
        let (phase, backtrace) = if finished {
            (BlockedPhase::Finished, Vec::new())
        } else {
            (
                BlockedPhase::Suspended,
                self.trace_one(key, self.fibers.with_stack(key, Stack::high_water)),
            )
        };
        let started = self.observer.probe().started_ns();
        hook(&BlockedFiber {
            id,
            name,
            worker: self.observer.worker(),
            spawned_at,
            blocked_for: Duration::from_nanos(now.saturating_sub(started)),
            phase,
            backtrace,
        });
    }

    /// The id of the live task `key`.
    fn id_of(&self, key: Key) -> Option<TaskId> {
        self.core.borrow().tasks.get(key).map(|t| t.id)
    }

    /// Delivers the event `kind` of the live task `key`.
    fn emit_for(&self, key: Key, kind: FiberEventKind) {
        let Some((id, name)) = self.describe(key) else {
            return;
        };
        self.emit(kind, id, name, self.observer.account(key.index()));
    }

    /// Delivers an event to the user's callback, if any (no borrow held).
    fn emit(&self, kind: FiberEventKind, id: TaskId, name: Option<Arc<str>>, a: Account) {
        let Some(hook) = self.observer.on_event() else {
            return;
        };
        let stats = TaskStats::new(id, None, &a);
        hook(&FiberEvent {
            kind,
            id,
            name: name.as_deref(),
            worker: self.observer.worker(),
            resumes: stats.resumes,
            running: stats.running,
            parked: stats.parked,
        });
    }
}
