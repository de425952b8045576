//! The model: what the runtime documents, as a plain interpreter.
//!
//! It follows the rules of the runtime's module docs ("Scheduling order",
//! "Cancellation and shutdown") and of `spindle::sync` ("Waiting, fairness,
//! cancellation"), written out once more without fibers:
//!
//! - a FIFO run queue; the loop runs in rounds, each resuming the fibers
//!   that were queued when it began; spawn, yield and every wake-up push to
//!   the back, and a wake-up of a fiber that is not parked does nothing;
//! - between rounds, sleepers whose deadline has passed wake in (deadline,
//!   order of going to sleep) order; time advances only when no fiber is
//!   ready, to the earliest deadline (time here is in whole units; the real
//!   run maps unit `t` to `t0 + t * unit`);
//! - a cancel marks the fiber and wakes it if it is parked; a cancelled
//!   fiber unwinds at its next suspension point, or as soon as it resumes
//!   from one; a fiber cancelled before it ever ran never runs; a wait that
//!   does not need to wait (a free lock, a message there, a finished
//!   fiber) is not a suspension point;
//! - wait queues are FIFO; an unlock hands the lock to the first waiter; a
//!   send notifies the first receiver waiting, which takes a message when
//!   it runs if one is still there, and waits again at the back otherwise;
//!   a receiver that takes a message and leaves others notifies the next
//!   one; a waiter notified and then cancelled passes the notification on;
//! - a bounded channel's sender waits while it is full or other senders
//!   wait (FIFO); taking a message notifies the first waiting sender (before
//!   the next receiver), which sends when it runs if there is room then and
//!   waits again at the back otherwise; a sender that leaves room behind it
//!   notifies the next one;
//! - the semaphore grants permits to the waiters at the front, in order,
//!   while the first one's request fits, and a request waits behind any
//!   waiter even if it would fit; a waiter leaving its wait (granted,
//!   cancelled) grants again (`Regrant`), a granted one cancelled before it
//!   runs gives its permits back first;
//! - an ending fiber drops its guards and permits in the order it took
//!   them, then its joiner (if parked in `join`) is woken;
//! - hand-offs: a fiber that parks in `join` for a fiber that has not
//!   started takes that one out of the queue (its entry stays, empty) to
//!   run right after it; a fiber that ends while its joiner is parked in
//!   `join` makes the joiner run right after it instead of waking it to the
//!   back. At most `HAND_OFF_LIMIT` hand-offs run after each fiber taken
//!   from the queue (then they are plain wake-ups, or no hand-off).
//!
//! The greenlet of every slot runs `|v| { enter(v); yield; let w =
//! root.switch(v + 1); enter(w); yield; w + 100 }`, so a switch logs
//! `GEnter`, yields the *task*, and returns `v + 1` (first switch) or
//! `w + 100` (second, after which the greenlet is dead).

use std::collections::VecDeque;

/// The runtime's limit on hand-offs in a row (its scheduler's `core.rs`).
const HAND_OFF_LIMIT: u32 = 64;

/// A run-queue entry emptied by a hand-off.
const EMPTIED: usize = usize::MAX;

use crate::ops::{
    result_of, with_epilogue, Event, Op, Out, Program, ACTORS, CAPACITY, CHANNELS, MUTEXES, PERMITS,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Yield,
    Sleep(u64),
    Recv(usize),
    Send(usize, u32),
    Lock(usize),
    Acquire(usize),
    Join(usize),
    Greenlet { slot: usize, round: u8, value: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Green {
    Empty,
    /// Suspended in its first `switch` back to the root.
    Suspended,
    Dead,
}

#[derive(Clone, Debug)]
struct Actor {
    script: Vec<Op>,
    started: bool,
    pc: usize,
    wait: Option<Wait>,
    /// In a wait that only a wake-up ends (not a yield).
    parked: bool,
    cancel: bool,
    /// Unlinked from a wait queue with a notification, not yet run.
    notified: bool,
    finished: Option<Result<u32, String>>,
    joiner: Option<usize>,
    /// Mutex guards and semaphore permits held, in the order taken.
    held: Vec<Held>,
    greenlets: Vec<Green>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    Guard(usize),
    Permits(usize),
}

#[derive(Default)]
struct Queue {
    waiters: VecDeque<usize>,
}

impl Queue {
    fn remove(&mut self, a: usize) {
        self.waiters.retain(|&w| w != a);
    }
}

/// The model's run of one program: every event, with the time unit it
/// happens in.
pub struct Model {
    actors: Vec<Actor>,
    run_queue: VecDeque<usize>,
    /// The actor to run right after the running one.
    hand_off: Option<usize>,
    /// Hand-offs run since the last actor taken from the queue.
    hand_offs: u32,
    /// (deadline, sequence number, actor); entries of sleepers woken for
    /// another reason stay until they expire, as the real queue's do.
    sleepers: Vec<(u64, u64, usize)>,
    next_seq: u64,
    now: u64,
    spawned: Vec<bool>,
    /// Whether actor j's handle is still in the table.
    handles: Vec<bool>,
    bufs: Vec<VecDeque<u32>>,
    recv_queues: Vec<Queue>,
    send_queues: Vec<Queue>,
    locked: Vec<bool>,
    lock_queues: Vec<Queue>,
    permits: usize,
    /// (actor, permits wanted)
    sem_queue: VecDeque<(usize, usize)>,
    log: Vec<(Event, u64)>,
    done: bool,
}

impl Model {
    /// Runs `program` in the model and returns its log.
    pub fn run(program: &Program) -> Vec<(Event, u64)> {
        let actors = (0..ACTORS)
            .map(|a| Actor {
                script: if a == 0 {
                    with_epilogue(&program[0])
                } else {
                    program[a].clone()
                },
                started: false,
                pc: 0,
                wait: None,
                parked: false,
                cancel: false,
                notified: false,
                finished: None,
                joiner: None,
                held: Vec::new(),
                greenlets: vec![Green::Empty; crate::ops::GREENLETS],
            })
            .collect();
        let mut m = Model {
            actors,
            run_queue: VecDeque::from([0]),
            hand_off: None,
            hand_offs: 0,
            sleepers: Vec::new(),
            next_seq: 0,
            now: 0,
            spawned: (0..ACTORS).map(|a| a == 0).collect(),
            handles: vec![false; ACTORS],
            bufs: vec![VecDeque::new(); CHANNELS],
            recv_queues: (0..CHANNELS).map(|_| Queue::default()).collect(),
            send_queues: (0..CHANNELS).map(|_| Queue::default()).collect(),
            locked: vec![false; MUTEXES],
            lock_queues: (0..MUTEXES).map(|_| Queue::default()).collect(),
            permits: PERMITS,
            sem_queue: VecDeque::new(),
            log: Vec::new(),
            done: false,
        };
        m.schedule();
        m.log
    }

    fn schedule(&mut self) {
        loop {
            let n = self.run_queue.len();
            for _ in 0..n {
                let a = self.run_queue.pop_front().expect("n were queued");
                if a == EMPTIED {
                    continue;
                }
                self.hand_offs = 0;
                self.resume(a);
                if self.done {
                    return;
                }
                while let Some(next) = self.hand_off.take() {
                    self.hand_offs += 1;
                    self.resume(next);
                    if self.done {
                        return;
                    }
                }
            }
            let live = |m: &Model, &(_, seq, a): &(u64, u64, usize)| {
                m.actors[a].parked && m.actors[a].wait == Some(Wait::Sleep(seq))
            };
            if self.run_queue.is_empty() {
                let next = self
                    .sleepers
                    .iter()
                    .filter(|e| live(self, e))
                    .map(|e| e.0)
                    .min();
                // The main fiber never waits for good (see the generator),
                // so the model never deadlocks.
                self.now = next
                    .expect("the model deadlocked: the generator allows a program it should not");
            }
            self.sleepers.sort_unstable();
            let (due, later): (Vec<_>, Vec<_>) =
                self.sleepers.iter().partition(|e| e.0 <= self.now);
            self.sleepers = later;
            for e in due {
                if live(self, &e) {
                    self.wake(e.2);
                }
            }
        }
    }

    fn log(&mut self, a: usize, out: Out) {
        let pc = self.actors[a].pc;
        self.log.push((Event { actor: a, pc, out }, self.now));
    }

    fn wake(&mut self, a: usize) {
        if self.actors[a].parked {
            self.actors[a].parked = false;
            self.run_queue.push_back(a);
        }
    }

    fn may_hand_off(&self) -> bool {
        self.hand_off.is_none() && self.hand_offs < HAND_OFF_LIMIT
    }

    /// The joiner of the ending fiber: runs next if it may, else a plain
    /// wake-up.
    fn wake_next(&mut self, a: usize) {
        if !self.may_hand_off() {
            return self.wake(a);
        }
        if self.actors[a].parked {
            self.actors[a].parked = false;
            self.hand_off = Some(a);
        }
    }

    /// `a` parks in `join` for `j`: `j` runs next if it has not started.
    fn hand_off_unstarted(&mut self, j: usize) {
        if !self.may_hand_off() || self.actors[j].started {
            return;
        }
        if let Some(e) = self.run_queue.iter_mut().find(|e| **e == j) {
            *e = EMPTIED;
            self.hand_off = Some(j);
        }
    }

    fn park(&mut self, a: usize, wait: Wait) {
        self.actors[a].wait = Some(wait);
        self.actors[a].parked = true;
    }

    fn unlock(&mut self, m: usize) {
        match self.lock_queues[m].waiters.pop_front() {
            Some(w) => {
                self.actors[w].notified = true;
                self.wake(w);
            }
            None => self.locked[m] = false,
        }
    }

    fn add_permits(&mut self, n: usize) {
        self.permits += n;
        while let Some(&(w, want)) = self.sem_queue.front() {
            if want > self.permits {
                break;
            }
            self.permits -= want;
            self.sem_queue.pop_front();
            self.actors[w].notified = true;
            self.wake(w);
        }
    }

    fn release(&mut self, held: Held) {
        match held {
            Held::Guard(m) => self.unlock(m),
            Held::Permits(n) => self.add_permits(n),
        }
    }

    fn notify_receiver(&mut self, c: usize) {
        if let Some(w) = self.recv_queues[c].waiters.pop_front() {
            self.actors[w].notified = true;
            self.wake(w);
        }
    }

    fn notify_sender(&mut self, c: usize) {
        if let Some(w) = self.send_queues[c].waiters.pop_front() {
            self.actors[w].notified = true;
            self.wake(w);
        }
    }

    fn has_room(&self, c: usize) -> bool {
        match CAPACITY[c] {
            None => true,
            Some(n) => self.bufs[c].len() < n,
        }
    }

    /// A `recv` that finds a message: takes it, tells the first waiting
    /// sender of a bounded channel, and the next receiver if more are left.
    fn take_message(&mut self, a: usize, c: usize) -> bool {
        let Some(v) = self.bufs[c].pop_front() else {
            return false;
        };
        if CAPACITY[c].is_some() {
            self.notify_sender(c);
        }
        if !self.bufs[c].is_empty() {
            self.notify_receiver(c);
        }
        self.log(a, Out::Received(v));
        true
    }

    /// A `send` that has room: puts the message in, tells the first
    /// waiting receiver, and the next sender if room is left.
    fn put_message(&mut self, a: usize, c: usize, v: u32) {
        self.bufs[c].push_back(v);
        self.notify_receiver(c);
        if self.has_room(c) {
            self.notify_sender(c);
        }
        self.log(a, Out::Sent);
    }

    fn finish(&mut self, a: usize, result: Result<u32, String>) {
        for h in std::mem::take(&mut self.actors[a].held) {
            self.release(h);
        }
        self.actors[a].finished = Some(result);
        if let Some(j) = self.actors[a].joiner.take() {
            self.wake_next(j);
        }
        if a == 0 {
            self.done = true;
        }
    }

    fn unwind(&mut self, a: usize) {
        self.finish(a, Err("cancelled".into()));
    }

    /// Leaves `wait` because of a cancel, as the wait's guard does.
    fn abandon(&mut self, a: usize, wait: Wait) {
        let notified = std::mem::replace(&mut self.actors[a].notified, false);
        match wait {
            Wait::Recv(c) if notified => self.notify_receiver(c),
            Wait::Recv(c) => self.recv_queues[c].remove(a),
            Wait::Send(c, _) if notified => self.notify_sender(c),
            Wait::Send(c, _) => self.send_queues[c].remove(a),
            Wait::Lock(m) if notified => self.unlock(m),
            Wait::Lock(m) => self.lock_queues[m].remove(a),
            Wait::Acquire(n) => {
                if notified {
                    self.add_permits(n);
                } else {
                    self.sem_queue.retain(|&(w, _)| w != a);
                }
                self.add_permits(0);
            }
            Wait::Join(j) => self.actors[j].joiner = None,
            Wait::Greenlet { slot, .. } => self.actors[a].greenlets[slot] = Green::Dead,
            Wait::Yield | Wait::Sleep(_) => {}
        }
    }

    fn resume(&mut self, a: usize) {
        if !self.actors[a].started {
            self.actors[a].started = true;
            if self.actors[a].cancel {
                self.finish(a, Err("cancelled".into()));
            } else {
                self.step(a);
            }
            return;
        }
        let wait = self.actors[a].wait.take().expect("a resumed actor waited");
        if self.actors[a].cancel {
            self.abandon(a, wait);
            self.unwind(a);
            return;
        }
        match wait {
            Wait::Yield => self.log(a, Out::Yielded),
            Wait::Sleep(_) => self.log(a, Out::Slept),
            Wait::Recv(c) => {
                self.actors[a].notified = false;
                if !self.take_message(a, c) {
                    self.recv_queues[c].waiters.push_back(a);
                    self.park(a, Wait::Recv(c));
                    return;
                }
            }
            Wait::Send(c, v) => {
                self.actors[a].notified = false;
                if !self.has_room(c) {
                    self.send_queues[c].waiters.push_back(a);
                    self.park(a, Wait::Send(c, v));
                    return;
                }
                self.put_message(a, c, v);
            }
            Wait::Lock(m) => {
                self.actors[a].notified = false;
                self.actors[a].held.push(Held::Guard(m));
                self.log(a, Out::Locked);
            }
            Wait::Acquire(n) => {
                self.actors[a].notified = false;
                self.actors[a].held.push(Held::Permits(n));
                self.add_permits(0);
                self.log(a, Out::Acquired);
            }
            Wait::Join(j) => {
                let r = self.actors[j].finished.clone().expect("woken by its end");
                self.log(a, Out::Joined(r));
            }
            Wait::Greenlet { slot, round, value } => {
                let (state, r) = if round == 0 {
                    (Green::Suspended, value + 1)
                } else {
                    (Green::Dead, value + 100)
                };
                self.actors[a].greenlets[slot] = state;
                self.log(a, Out::GSwitched(r));
            }
        }
        self.actors[a].pc += 1;
        self.step(a);
    }

    /// Runs actor `a` from its `pc` until it suspends or ends.
    fn step(&mut self, a: usize) {
        loop {
            let pc = self.actors[a].pc;
            let Some(&op) = self.actors[a].script.get(pc) else {
                self.finish(a, Ok(result_of(a)));
                return;
            };
            let cancel = self.actors[a].cancel;
            match op {
                Op::Spawn(j) => {
                    if self.spawned[j] {
                        self.log(a, Out::Skipped);
                    } else {
                        self.spawned[j] = true;
                        self.handles[j] = true;
                        self.run_queue.push_back(j);
                        self.log(a, Out::Spawned);
                    }
                }
                Op::Yield => {
                    if cancel {
                        return self.unwind(a);
                    }
                    self.run_queue.push_back(a);
                    self.actors[a].wait = Some(Wait::Yield);
                    return;
                }
                Op::Sleep(k) => {
                    self.log(a, Out::Sleeping);
                    if cancel {
                        return self.unwind(a);
                    }
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.sleepers.push((self.now + k, seq, a));
                    self.park(a, Wait::Sleep(seq));
                    return;
                }
                Op::Cancel(j) => {
                    if self.handles[j] {
                        if self.actors[j].finished.is_none() {
                            self.actors[j].cancel = true;
                            self.wake(j);
                        }
                        self.log(a, Out::CancelSent);
                    } else {
                        self.log(a, Out::Skipped);
                    }
                }
                Op::Join(j) => {
                    if j <= a || !self.handles[j] {
                        self.log(a, Out::Skipped);
                    } else {
                        self.handles[j] = false;
                        if let Some(r) = self.actors[j].finished.clone() {
                            self.log(a, Out::Joined(r));
                        } else {
                            if cancel {
                                return self.unwind(a);
                            }
                            self.actors[j].joiner = Some(a);
                            self.park(a, Wait::Join(j));
                            self.hand_off_unstarted(j);
                            return;
                        }
                    }
                }
                Op::Send(c, v) => {
                    if self.has_room(c) && self.send_queues[c].waiters.is_empty() {
                        self.put_message(a, c, v);
                    } else {
                        if cancel {
                            return self.unwind(a);
                        }
                        self.send_queues[c].waiters.push_back(a);
                        self.park(a, Wait::Send(c, v));
                        return;
                    }
                }
                Op::Recv(c) => {
                    if !self.take_message(a, c) {
                        if cancel {
                            return self.unwind(a);
                        }
                        self.recv_queues[c].waiters.push_back(a);
                        self.park(a, Wait::Recv(c));
                        return;
                    }
                }
                Op::Lock(m) => {
                    if self.actors[a].held.contains(&Held::Guard(m)) {
                        self.log(a, Out::Skipped);
                    } else if !self.locked[m] && self.lock_queues[m].waiters.is_empty() {
                        self.locked[m] = true;
                        self.actors[a].held.push(Held::Guard(m));
                        self.log(a, Out::Locked);
                    } else {
                        if cancel {
                            return self.unwind(a);
                        }
                        self.lock_queues[m].waiters.push_back(a);
                        self.park(a, Wait::Lock(m));
                        return;
                    }
                }
                Op::Unlock(m) => {
                    if let Some(i) = self.actors[a]
                        .held
                        .iter()
                        .position(|&h| h == Held::Guard(m))
                    {
                        let h = self.actors[a].held.remove(i);
                        self.release(h);
                        self.log(a, Out::Unlocked);
                    } else {
                        self.log(a, Out::Skipped);
                    }
                }
                Op::Acquire(n) => {
                    if self.permits >= n && self.sem_queue.is_empty() {
                        self.permits -= n;
                        self.actors[a].held.push(Held::Permits(n));
                        self.log(a, Out::Acquired);
                    } else {
                        if cancel {
                            self.add_permits(0);
                            return self.unwind(a);
                        }
                        self.sem_queue.push_back((a, n));
                        self.park(a, Wait::Acquire(n));
                        return;
                    }
                }
                Op::Release => {
                    let held = &self.actors[a].held;
                    if let Some(i) = held.iter().position(|h| matches!(h, Held::Permits(_))) {
                        let h = self.actors[a].held.remove(i);
                        self.release(h);
                        self.log(a, Out::Released);
                    } else {
                        self.log(a, Out::Skipped);
                    }
                }
                Op::GSwitch(slot, value) => {
                    let round = match self.actors[a].greenlets[slot] {
                        Green::Suspended => 1,
                        Green::Empty | Green::Dead => 0,
                    };
                    self.log(a, Out::GEnter(value));
                    if cancel {
                        self.actors[a].greenlets[slot] = Green::Dead;
                        return self.unwind(a);
                    }
                    self.run_queue.push_back(a);
                    self.actors[a].wait = Some(Wait::Greenlet { slot, round, value });
                    return;
                }
                Op::GDrop(slot) => {
                    if self.actors[a].greenlets[slot] == Green::Empty {
                        self.log(a, Out::Skipped);
                    } else {
                        self.actors[a].greenlets[slot] = Green::Empty;
                        self.log(a, Out::GDropped);
                    }
                }
            }
            self.actors[a].pc += 1;
        }
    }
}
