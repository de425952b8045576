//! The real run: each actor of a program as a spindle fiber, logging what
//! each operation did and when.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle::sync::{
    channel, sync_channel, Mutex, MutexGuard, Receiver, Semaphore, SemaphorePermit, Sender,
    SyncSender,
};
use spindle::{Greenlet, JoinError, JoinHandle};

use crate::ops::{
    result_of, with_epilogue, Event, Op, Out, Program, ACTORS, CAPACITY, GREENLETS, MUTEXES,
    PERMITS,
};

/// The sender of a channel of either kind.
enum AnySender {
    Unbounded(Sender<u32>),
    Bounded(SyncSender<u32>),
}

/// What every actor of one run shares.
struct World {
    scripts: Vec<Vec<Op>>,
    handles: RefCell<Vec<Option<JoinHandle<u32>>>>,
    spawned: RefCell<Vec<bool>>,
    senders: Vec<AnySender>,
    receivers: Vec<Receiver<u32>>,
    mutexes: Vec<Mutex<()>>,
    semaphore: Semaphore,
    /// Each event with the time since `t0` at which it was logged.
    log: RefCell<Vec<(Event, Duration)>>,
    /// Set by the main fiber as its last act: what the runtime does after
    /// that (shutdown) is not part of the model.
    closed: Cell<bool>,
    t0: Instant,
    unit: Duration,
}

impl World {
    fn log(&self, actor: usize, pc: usize, out: Out) {
        if !self.closed.get() {
            let at = self.t0.elapsed();
            self.log.borrow_mut().push((Event { actor, pc, out }, at));
        }
    }

    /// The deadline `k` units after the unit we are in now.
    fn deadline(&self, k: u64) -> Instant {
        let unit = self.unit.as_nanos();
        let now = self.t0.elapsed().as_nanos() / unit;
        self.t0 + Duration::from_nanos(((now + u128::from(k)) * unit) as u64)
    }
}

/// Runs `program` on a fresh runtime with time unit `unit`. Returns the
/// log, or the panic message if the runtime (the main fiber) panicked.
pub fn run(program: &Program, unit: Duration) -> Result<Vec<(Event, Duration)>, String> {
    let mut scripts = program.clone();
    scripts[0] = with_epilogue(&program[0]);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        spindle::run(move || {
            let (senders, receivers) = CAPACITY
                .iter()
                .map(|cap| match *cap {
                    None => {
                        let (tx, rx) = channel();
                        (AnySender::Unbounded(tx), rx)
                    }
                    Some(n) => {
                        let (tx, rx) = sync_channel(n);
                        (AnySender::Bounded(tx), rx)
                    }
                })
                .unzip();
            let world = Rc::new(World {
                scripts,
                handles: RefCell::new((0..ACTORS).map(|_| None).collect()),
                spawned: RefCell::new((0..ACTORS).map(|a| a == 0).collect()),
                senders,
                receivers,
                mutexes: (0..MUTEXES).map(|_| Mutex::new(())).collect(),
                semaphore: Semaphore::new(PERMITS),
                log: RefCell::new(Vec::new()),
                closed: Cell::new(false),
                t0: Instant::now(),
                unit,
            });
            actor(Rc::clone(&world), 0);
            world.log.take()
        })
    }));
    outcome.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "<non-string panic>".into())
    })
}

fn join_result(r: Result<u32, JoinError>) -> Result<u32, String> {
    r.map_err(|e| match e {
        JoinError::Cancelled => "cancelled".to_string(),
        JoinError::Panicked(p) => format!(
            "panicked: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        ),
    })
}

/// The greenlet every slot runs; see the model's docs.
fn greenlet(world: &Rc<World>, me: usize, pc: &Rc<Cell<usize>>) -> Greenlet<u32> {
    let (world, pc) = (Rc::clone(world), Rc::clone(pc));
    Greenlet::new(move |v: u32| {
        let root = Greenlet::current()
            .parent()
            .expect("a greenlet has a parent");
        world.log(me, pc.get(), Out::GEnter(v));
        spindle::yield_now();
        let w = root.switch(v + 1);
        drop(root);
        world.log(me, pc.get(), Out::GEnter(w));
        spindle::yield_now();
        w + 100
    })
}

/// A guard or permits an actor holds, only to drop them when told to.
enum Held<'a> {
    Guard {
        mutex: usize,
        _guard: MutexGuard<'a, ()>,
    },
    Permits {
        _permit: SemaphorePermit<'a>,
    },
}

impl Held<'_> {
    fn is_guard_of(&self, m: usize) -> bool {
        matches!(self, Held::Guard { mutex, .. } if *mutex == m)
    }
}

/// Actor `me`'s fiber: runs its script.
fn actor(world: Rc<World>, me: usize) -> u32 {
    let pc = Rc::new(Cell::new(0));
    // Declared before `held`, so dropped after it (the model releases the
    // locks first; dropping a greenlet wakes nobody).
    let mut greenlets: Vec<Option<Greenlet<u32>>> = (0..GREENLETS).map(|_| None).collect();
    let mut held: Vec<Held<'_>> = Vec::new();
    let w = &*world;
    for (i, &op) in w.scripts[me].iter().enumerate() {
        pc.set(i);
        let log = |out| w.log(me, i, out);
        match op {
            Op::Spawn(j) => {
                if w.spawned.borrow()[j] {
                    log(Out::Skipped);
                } else {
                    w.spawned.borrow_mut()[j] = true;
                    let world = Rc::clone(&world);
                    let h = spindle::spawn(move || actor(world, j));
                    w.handles.borrow_mut()[j] = Some(h);
                    log(Out::Spawned);
                }
            }
            Op::Yield => {
                spindle::yield_now();
                log(Out::Yielded);
            }
            Op::Sleep(k) => {
                log(Out::Sleeping);
                spindle::sleep_until(w.deadline(k));
                log(Out::Slept);
            }
            Op::Cancel(j) => match &w.handles.borrow()[j] {
                Some(h) => {
                    h.cancel();
                    log(Out::CancelSent);
                }
                None => log(Out::Skipped),
            },
            Op::Join(j) => {
                let h = if j > me {
                    w.handles.borrow_mut()[j].take()
                } else {
                    None
                };
                match h {
                    Some(h) => log(Out::Joined(join_result(h.join()))),
                    None => log(Out::Skipped),
                }
            }
            Op::Send(c, v) => {
                let sent = match &w.senders[c] {
                    AnySender::Unbounded(tx) => tx.send(v),
                    AnySender::Bounded(tx) => tx.send(v),
                };
                sent.expect("the receiver lives as long as the world");
                log(Out::Sent);
            }
            Op::Recv(c) => {
                let v = w.receivers[c]
                    .recv()
                    .expect("the senders live as long as the world");
                log(Out::Received(v));
            }
            Op::Lock(m) => {
                if held.iter().any(|h| h.is_guard_of(m)) {
                    log(Out::Skipped);
                } else {
                    held.push(Held::Guard {
                        mutex: m,
                        _guard: w.mutexes[m].lock(),
                    });
                    log(Out::Locked);
                }
            }
            Op::Acquire(n) => {
                held.push(Held::Permits {
                    _permit: w.semaphore.acquire_many(n),
                });
                log(Out::Acquired);
            }
            Op::Release => match held.iter().position(|h| matches!(h, Held::Permits { .. })) {
                Some(i) => {
                    drop(held.remove(i));
                    log(Out::Released);
                }
                None => log(Out::Skipped),
            },
            Op::Unlock(m) => match held.iter().position(|h| h.is_guard_of(m)) {
                Some(i) => {
                    drop(held.remove(i));
                    log(Out::Unlocked);
                }
                None => log(Out::Skipped),
            },
            Op::GSwitch(slot, v) => {
                let g = match &greenlets[slot] {
                    Some(g) if !g.is_dead() => g.clone(),
                    _ => {
                        let g = greenlet(&world, me, &pc);
                        greenlets[slot] = Some(g.clone());
                        g
                    }
                };
                let r = g.switch(v);
                log(Out::GSwitched(r));
            }
            Op::GDrop(slot) => match greenlets[slot].take() {
                Some(g) => {
                    drop(g);
                    log(Out::GDropped);
                }
                None => log(Out::Skipped),
            },
        }
    }
    if me == 0 {
        w.closed.set(true);
    }
    drop(held);
    drop(greenlets);
    result_of(me)
}
