//! `Semaphore`: exactly k at once, `acquire_many`, FIFO grants, `try_acquire`, `add_permits`, `forget`.

use super::*;

/// `Semaphore::new(k)` with 10 fibers doing acquire, sleep, release:
/// at most `k` are ever inside at once, exactly `k` at times, and all
/// `k` permits are free at the end.
#[test]
fn concurrency_is_capped_at_exactly_k() {
    for k in [1usize, 3] {
        spindle::run(move || {
            let sem = Rc::new(Semaphore::new(k));
            let now = Rc::new(Cell::new(0usize));
            let most = Rc::new(Cell::new(0usize));
            let fibers: Vec<_> = (0..10)
                .map(|_| {
                    let (sem, now, most) = (sem.clone(), now.clone(), most.clone());
                    spindle::spawn(move || {
                        let _permit = sem.acquire();
                        now.set(now.get() + 1);
                        most.set(most.get().max(now.get()));
                        spindle::sleep(Duration::from_millis(1));
                        now.set(now.get() - 1);
                    })
                })
                .collect();
            for r in spindle::join_all(fibers) {
                r.unwrap();
            }
            assert_eq!(most.get(), k);
            assert_eq!(sem.available_permits(), k);
        });
    }
}

/// `acquire_many(n)` takes `n` permits at once, waits until `n` are
/// free, and its permit gives all `n` back when dropped.
#[test]
fn acquire_many_takes_several_permits_at_once() {
    spindle::run(|| {
        let sem = Rc::new(Semaphore::new(5));
        let p = sem.acquire_many(3);
        assert_eq!(p.num_permits(), 3);
        assert_eq!(sem.available_permits(), 2);
        let s = Rc::clone(&sem);
        let waiter = spindle::spawn(move || s.acquire_many(3).num_permits());
        settle();
        assert_waiting_sync(&waiter);
        assert_eq!(sem.available_permits(), 2);
        drop(p);
        assert_eq!(
            sem.available_permits(),
            2,
            "3 of the 5 were granted to the waiter"
        );
        assert_eq!(waiter.join().unwrap(), 3);
        assert_eq!(sem.available_permits(), 5);
    });
}

/// First come, first served: three fibers keep cycling the three
/// permits (release and re-acquire with no pause between); a request
/// for all three, once queued, makes the later small requests queue
/// behind it, so it is served as soon as the three permits come back
/// and no small acquisition slips in before it.
#[test]
fn a_big_request_is_not_starved_by_small_ones() {
    spindle::run(|| {
        let sem = Rc::new(Semaphore::new(3));
        let l = log();
        let stop = Rc::new(Cell::new(false));
        let smalls: Vec<_> = (0..3)
            .map(|i| {
                let (sem, l, stop) = (sem.clone(), l.clone(), stop.clone());
                spindle::spawn(move || {
                    // Bounded, so that starvation fails the test
                    // instead of hanging it.
                    for _ in 0..200 {
                        if stop.get() {
                            break;
                        }
                        let p = sem.acquire();
                        push(&l, format!("small{i}"));
                        spindle::yield_now();
                        drop(p);
                    }
                })
            })
            .collect();
        settle();
        let (s, l2, st) = (sem.clone(), l.clone(), stop.clone());
        let big = spindle::spawn(move || {
            let free = s.available_permits();
            push(&l2, format!("big asks ({free} free)"));
            let _p = s.acquire_many(3);
            push(&l2, "big");
            st.set(true);
        });
        big.join().unwrap();
        for r in spindle::join_all(smalls) {
            r.unwrap();
        }
        let l = l.borrow();
        let asked = l.iter().position(|e| e.starts_with("big asks")).unwrap();
        assert_eq!(l[asked], "big asks (0 free)", "the big request had to wait");
        assert!(asked >= 3, "the small fibers were cycling: {l:?}");
        assert_eq!(
            l[asked + 1],
            "big",
            "a small request overtook the big one: {l:?}"
        );
        assert_eq!(sem.available_permits(), 3);
    });
}

/// Permits granted to a waiter while some other fiber is parked in the
/// middle of unwinding (a cancelled fiber whose destructor waits) are
/// the waiter's: they are not also given back to the count, so the
/// semaphore never ends up with more permits than it was given.
#[test]
fn a_grant_is_not_also_returned_while_another_fiber_is_unwinding() {
    spindle::run(|| {
        let (gate_tx, unwinding) = park_a_fiber_mid_unwind();

        let sem = Rc::new(Semaphore::new(1));
        let held = sem.acquire();
        let s = Rc::clone(&sem);
        let seen_while_held = Rc::new(Cell::new(None));
        let seen = seen_while_held.clone();
        let waiter = spindle::spawn(move || {
            let p = s.acquire();
            seen.set(Some(s.available_permits()));
            drop(p);
        });
        settle();
        assert_waiting_sync(&waiter);
        drop(held); // granted to `waiter`
        waiter.join().unwrap();
        drop(gate_tx);
        assert_cancelled(unwinding);
        assert_eq!(
            seen_while_held.get(),
            Some(0),
            "a permit was free while the only one was held"
        );
        assert_eq!(
            sem.available_permits(),
            1,
            "a permit was made out of nothing"
        );
    });
}

/// `try_acquire` never waits: it takes a free permit, fails when none
/// is free, and fails when one is free but a fiber is queued first.
#[test]
fn try_acquire_never_waits_and_never_jumps_the_queue() {
    spindle::run(|| {
        let sem = Rc::new(Semaphore::new(2));
        let a = sem.try_acquire().expect("2 free");
        assert_eq!(sem.available_permits(), 1);
        assert!(sem.try_acquire_many(2).is_none());
        let b = sem.try_acquire().expect("1 free");
        assert!(sem.try_acquire().is_none());
        drop(a);
        drop(b);
        assert_eq!(sem.available_permits(), 2);

        let held = sem.acquire();
        let s = Rc::clone(&sem);
        let waiter = spindle::spawn(move || drop(s.acquire_many(2)));
        settle();
        assert_waiting_sync(&waiter);
        assert_eq!(sem.available_permits(), 1);
        assert!(
            sem.try_acquire().is_none(),
            "a permit is free, but a fiber is queued first"
        );
        drop(held);
        waiter.join().unwrap();
        assert_eq!(sem.available_permits(), 2);
    });
}

/// `add_permits` grants new permits to the queued fibers in order, as
/// long as the first one's request fits, and keeps the rest.
#[test]
fn add_permits_grants_waiters_in_order() {
    spindle::run(|| {
        let sem = Rc::new(Semaphore::new(0));
        let l = log();
        let waiters: Vec<_> = [("w1", 2usize), ("w2", 1), ("w3", 1)]
            .into_iter()
            .map(|(name, n)| {
                let (sem, l) = (sem.clone(), l.clone());
                let h = spindle::spawn(move || {
                    sem.acquire_many(n).forget();
                    push(&l, name);
                });
                settle(); // queue them in this order
                h
            })
            .collect();
        sem.add_permits(1);
        settle();
        assert!(l.borrow().is_empty(), "w1 wants 2 and is first");
        assert_eq!(sem.available_permits(), 1);
        sem.add_permits(2);
        settle();
        assert_eq!(*l.borrow(), ["w1", "w2"]);
        assert_eq!(sem.available_permits(), 0);
        sem.add_permits(1);
        settle();
        assert_eq!(*l.borrow(), ["w1", "w2", "w3"]);
        assert_eq!(sem.available_permits(), 0);
        for r in spindle::join_all(waiters) {
            r.unwrap();
        }
    });
}

/// A forgotten permit stays taken: the semaphore has that many fewer
/// until `add_permits` makes up for it.
#[test]
fn a_forgotten_permit_stays_taken() {
    spindle::run(|| {
        let sem = Semaphore::new(3);
        sem.acquire_many(2).forget();
        assert_eq!(sem.available_permits(), 1);
        drop(sem.acquire());
        assert_eq!(sem.available_permits(), 1);
        assert!(sem.try_acquire_many(2).is_none());
        sem.add_permits(2);
        assert_eq!(sem.available_permits(), 3);
    });
}
