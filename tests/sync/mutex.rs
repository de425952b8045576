//! `Mutex`: strict first-come-first-served hand-over and exclusion across suspension points.

use super::*;

const FIBERS: usize = 4;
const ROUNDS: usize = 5;

/// Each of 4 fibers, 5 times: lock, pause inside the critical section,
/// unlock, and lock again at once. The lock goes strictly round robin
/// (0 1 2 3 0 1 2 3 ...), with a yield or a sleep as the pause: a fiber
/// that unlocks and re-locks queues behind the others instead of taking
/// the lock back, and nobody starves.
#[test]
fn the_lock_is_handed_over_round_robin() {
    fn pause_yield() {
        spindle::yield_now();
    }
    fn pause_sleep() {
        spindle::sleep(Duration::from_micros(200));
    }
    for pause in [pause_yield as fn(), pause_sleep] {
        let order = spindle::run(move || {
            let m = Rc::new(Mutex::new(Vec::new()));
            let fibers: Vec<_> = (0..FIBERS)
                .map(|id| {
                    let m = Rc::clone(&m);
                    spindle::spawn(move || {
                        for _ in 0..ROUNDS {
                            let mut g = m.lock();
                            g.push(id);
                            pause();
                            drop(g);
                        }
                    })
                })
                .collect();
            for r in spindle::join_all(fibers) {
                r.unwrap();
            }
            let order = m.lock().clone();
            order
        });
        let expected: Vec<usize> = (0..ROUNDS).flat_map(|_| 0..FIBERS).collect();
        assert_eq!(order, expected);
    }
}

/// A read, suspend, write of a counter inside the lock never loses an
/// update, and no two fibers are ever inside at once, across sleeps and
/// yields.
#[test]
fn the_lock_excludes_across_suspension_points() {
    spindle::run(|| {
        let counter = Rc::new(Mutex::new(0u32));
        let inside = Rc::new(Cell::new(0));
        let most_inside = Rc::new(Cell::new(0));
        let fibers: Vec<_> = (0..8)
            .map(|i| {
                let (c, inside, most) = (counter.clone(), inside.clone(), most_inside.clone());
                spindle::spawn(move || {
                    for j in 0..10 {
                        let mut g = c.lock();
                        inside.set(inside.get() + 1);
                        most.set(most.get().max(inside.get()));
                        let seen = *g;
                        if (i + j) % 2 == 0 {
                            spindle::sleep(Duration::from_micros(50));
                        } else {
                            spindle::yield_now();
                        }
                        *g = seen + 1;
                        inside.set(inside.get() - 1);
                    }
                })
            })
            .collect();
        for r in spindle::join_all(fibers) {
            r.unwrap();
        }
        assert_eq!(*counter.lock(), 80);
        assert_eq!(most_inside.get(), 1);
        assert!(!counter.is_locked());
    });
}

/// `try_lock` fails while the lock is held, while fibers are queued for
/// it, and after it has been handed to a queued fiber that has not run
/// yet (no barging); it succeeds once the lock is free again.
#[test]
fn try_lock_fails_while_locked_or_handed_over() {
    spindle::run(|| {
        let m = Rc::new(Mutex::new(0));
        let g = m.try_lock().expect("a new mutex is free");
        assert!(m.is_locked());
        assert!(m.try_lock().is_none());
        let m2 = Rc::clone(&m);
        let waiter = spindle::spawn(move || {
            let mut g = m2.lock();
            *g += 1;
            spindle::yield_now();
        });
        settle();
        assert_waiting_sync(&waiter);
        assert!(m.try_lock().is_none(), "locked, with a fiber queued");
        drop(g); // handed to `waiter`, which has not run yet
        assert!(
            m.is_locked(),
            "the lock stays taken for the fiber it was handed to"
        );
        assert!(
            m.try_lock().is_none(),
            "try_lock barged past the queued fiber"
        );
        spindle::yield_now(); // `waiter` runs and yields holding the lock
        assert!(m.try_lock().is_none());
        waiter.join().unwrap();
        assert_eq!(*m.try_lock().expect("free again"), 1);
    });
}

/// A fiber handed the lock owns it even while some *other* fiber is
/// parked in the middle of unwinding (a cancelled fiber whose
/// destructor waits, which the runtime allows): the mutex stays locked
/// and `try_lock` fails until the owner unlocks.
#[test]
fn the_lock_excludes_while_another_fiber_is_unwinding() {
    spindle::run(|| {
        let (gate_tx, unwinding) = park_a_fiber_mid_unwind();

        let m = Rc::new(Mutex::new(()));
        let g = m.lock();
        let m2 = Rc::clone(&m);
        let locked_while_held = Rc::new(Cell::new(None));
        let l = locked_while_held.clone();
        let owner = spindle::spawn(move || {
            let g = m2.lock();
            l.set(Some(m2.is_locked()));
            spindle::yield_now();
            drop(g);
        });
        settle();
        assert_waiting_sync(&owner);
        drop(g); // handed to `owner`
        spindle::yield_now(); // `owner` takes it and yields holding it
        let barged = m.try_lock().is_some();
        owner.join().unwrap();
        drop(gate_tx);
        assert_cancelled(unwinding);
        assert_eq!(
            locked_while_held.get(),
            Some(true),
            "is_locked() was false while a fiber held the guard"
        );
        assert!(
            !barged,
            "try_lock succeeded while another fiber held the guard"
        );
    });
}

/// A cancelled fiber's destructor may wait for a lock (the runtime lets
/// destructors wait): once handed the lock it owns it, so the mutex
/// stays locked and nobody else gets in until that guard drops.
#[test]
fn a_lock_taken_in_a_destructor_during_unwinding_is_exclusive() {
    struct LockOnDrop {
        m: Rc<Mutex<u32>>,
        locked_inside: Rc<Cell<Option<bool>>>,
    }
    impl Drop for LockOnDrop {
        fn drop(&mut self) {
            let mut g = self.m.lock();
            *g += 1;
            self.locked_inside.set(Some(self.m.is_locked()));
            spindle::yield_now();
            drop(g);
        }
    }
    spindle::run(|| {
        let m = Rc::new(Mutex::new(0));
        let locked_inside = Rc::new(Cell::new(None));
        let g = m.lock();
        let d = LockOnDrop {
            m: Rc::clone(&m),
            locked_inside: locked_inside.clone(),
        };
        let f = spindle::spawn(move || {
            let _d = d;
            spindle::sleep(Duration::from_secs(3600));
        });
        settle();
        f.cancel();
        settle(); // `f` unwinds into LockOnDrop::drop, which queues for the lock
        assert_waiting_sync(&f);
        drop(g); // handed to the destructor
        spindle::yield_now(); // it takes the lock and yields holding it
        let barged = m.try_lock().is_some();
        assert_cancelled(f);
        assert_eq!(*m.lock(), 1);
        assert_eq!(
            locked_inside.get(),
            Some(true),
            "is_locked() was false while the destructor held the guard"
        );
        assert!(
            !barged,
            "try_lock succeeded while the destructor held the guard"
        );
    });
}
