//! Watching fibers run: per-fiber accounting, the counters of every
//! worker, fiber events for the user's own tracing, and the
//! blocked-scheduler watchdog.
//!
//! | file | what |
//! |---|---|
//! | `clock.rs` | the clock of the accounting (`CLOCK_MONOTONIC`), and why that one |
//! | `accounting.rs` | one fiber's account (resumes, running, parked); [`TaskStats`] |
//! | `probe.rs` | what each worker publishes for other threads: counters, the fiber on the CPU |
//! | `events.rs` | [`FiberEvent`]: spawn, resume, suspend, exit |
//! | `watchdog.rs` | the watchdog thread and its [`BlockedFiber`] report |
//!
//! This folder is the runtime's tier 1 beside the drivers (see the
//! runtime's module docs, "Tiers"): it holds the data and the watchdog
//! thread, and imports only the vocabulary (`task/`). The scheduler owns
//! one [`Observer`] and calls it from its switch (`scheduler/observe.rs`).
//!
//! ## Cost, and what is always on
//!
//! Every worker counts its resumes, spawns and finishes in its
//! [`Probe`](probe::Probe) always: one plain store per resume, as the
//! single-thread counter it replaces cost, so that
//! [`Runtime::stats`](crate::Runtime::stats) sums every worker from any
//! thread. Everything else is off until the runtime's builder asks for it
//! ([`accounting`](crate::runtime::RuntimeBuilder::accounting),
//! [`on_fiber_event`](crate::runtime::RuntimeBuilder::on_fiber_event),
//! [`watchdog`](crate::runtime::RuntimeBuilder::watchdog)); off, the switch tests
//! one `bool` of the scheduler ([`Observer::active`]), a branch that is
//! never taken.
//!
//! ## Who owns what
//!
//! - An [`Observer`] belongs to one scheduler, on its thread: the accounts
//!   of its fibers (indexed like its task table) and its settings.
//! - A [`Probe`](probe::Probe) is shared (`Arc`) by its worker, which
//!   writes it, and the runtime and watchdog, which read it (see
//!   `probe.rs`).
//! - The fiber-event callback and the watchdog's report callback are
//!   shared by every worker: `Send + Sync`, called from any of them.

pub(crate) mod accounting;
pub(crate) mod clock;
pub(crate) mod events;
pub(crate) mod probe;
pub(crate) mod watchdog;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use accounting::TaskStats;
pub use events::{FiberEvent, FiberEventKind};
pub use watchdog::{BlockedFiber, BlockedPhase};

use accounting::Account;
use probe::Probe;
use watchdog::BlockedHook;

/// The user's fiber-event callback.
pub(crate) type FiberHook = Arc<dyn Fn(&FiberEvent<'_>) + Send + Sync>;

/// What a runtime's builder asked to observe.
#[derive(Clone, Default)]
pub(crate) struct Config {
    pub(crate) accounting: bool,
    pub(crate) on_event: Option<FiberHook>,
    pub(crate) watchdog: Option<Duration>,
    pub(crate) on_blocked: Option<BlockedHook>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("accounting", &self.accounting)
            .field("on_event", &self.on_event.is_some())
            .field("watchdog", &self.watchdog)
            .field("on_blocked", &self.on_blocked.is_some())
            .finish()
    }
}

/// One scheduler's observation: its settings, its probe, the accounts of
/// its fibers; see the [module docs](self).
pub(crate) struct Observer {
    /// Any of the three below is on.
    active: bool,
    accounting: bool,
    on_event: Option<FiberHook>,
    /// Where the worker's follow-up reports go, while a watchdog runs.
    on_blocked: Option<BlockedHook>,
    worker: usize,
    probe: Arc<Probe>,
    /// `accounts[k.index()]` belongs to the live task `k` (accounting only).
    accounts: RefCell<Vec<Account>>,
    /// When the last resume of this round ended, if nothing ran since
    /// (see [`start_stamp`](Self::start_stamp)).
    last_end: Cell<Option<u64>>,
}

impl Observer {
    /// Worker `worker`'s observer, as `config` says, publishing in `probe`.
    pub(crate) fn new(worker: usize, config: &Config, probe: Arc<Probe>) -> Observer {
        let on_blocked = config.watchdog.map(|_| {
            config
                .on_blocked
                .clone()
                .unwrap_or_else(watchdog::to_stderr)
        });
        Observer {
            active: config.accounting || config.on_event.is_some() || on_blocked.is_some(),
            accounting: config.accounting,
            on_event: config.on_event.clone(),
            on_blocked,
            worker,
            probe,
            accounts: RefCell::new(Vec::new()),
            last_end: Cell::new(None),
        }
    }

    /// Whether anything beyond the counters is observed: the one branch of
    /// the switch.
    #[inline(always)]
    pub(crate) fn active(&self) -> bool {
        self.active
    }

    /// Whether fibers' times are kept.
    #[inline]
    pub(crate) fn accounting(&self) -> bool {
        self.accounting
    }

    /// The fiber-event callback, if any.
    #[inline]
    pub(crate) fn on_event(&self) -> Option<&FiberHook> {
        self.on_event.as_ref()
    }

    /// Where follow-up reports go, if a watchdog runs.
    #[inline]
    pub(crate) fn on_blocked(&self) -> Option<&BlockedHook> {
        self.on_blocked.as_ref()
    }

    /// The worker this scheduler is.
    pub(crate) fn worker(&self) -> usize {
        self.worker
    }

    /// The worker's published counters.
    #[inline(always)]
    pub(crate) fn probe(&self) -> &Arc<Probe> {
        &self.probe
    }

    /// The stamp of a resume's start. Inside a round, between two resumes,
    /// the scheduler only takes the next fiber from its queue, so the end
    /// of the resume before serves as this one's start: one clock read per
    /// resume instead of two. After a round (the scheduler may have blocked
    /// in its reactor), a fiber event (the user's callback ran) or a
    /// watchdog report, the clock is read again.
    #[inline]
    pub(crate) fn start_stamp(&self) -> u64 {
        self.last_end.take().unwrap_or_else(clock::now_ns)
    }

    /// The stamp of a resume's end (see [`start_stamp`](Self::start_stamp)).
    #[inline]
    pub(crate) fn end_stamp(&self) -> u64 {
        let now = clock::now_ns();
        if self.on_event.is_none() {
            self.last_end.set(Some(now));
        }
        now
    }

    /// A round begins (or a resume outside one, at shutdown): the next
    /// resume reads the clock.
    #[inline(always)]
    pub(crate) fn end_round(&self) {
        self.last_end.set(None);
    }

    /// A fresh account for the task at `index`, spawned at `now`.
    pub(crate) fn open(&self, index: usize, now: u64) {
        let mut accounts = self.accounts.borrow_mut();
        if accounts.len() <= index {
            accounts.resize(index + 1, Account::default());
        }
        accounts[index] = Account::new(now);
    }

    /// Runs `f` on the account of the task at `index` (opened at spawn).
    pub(crate) fn with_account<R>(&self, index: usize, f: impl FnOnce(&mut Account) -> R) -> R {
        f(&mut self.accounts.borrow_mut()[index])
    }

    /// The account of the task at `index`, or an empty one without
    /// accounting.
    pub(crate) fn account(&self, index: usize) -> Account {
        if self.accounting {
            self.accounts.borrow()[index]
        } else {
            Account::default()
        }
    }
}
