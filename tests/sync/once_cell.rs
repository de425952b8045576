//! `OnceCell`: one initialisation that may park, others wait for it; a
//! panicking, failing or cancelled initialiser lets the next waiter try;
//! waiters cancelled or timed out leave the cell consistent.

use super::*;

/// Spawns a fiber that asks `cell` for its value with an initialiser
/// that counts its runs in `runs`, parks until `gate` is set, and returns
/// `value`.
fn asker(
    cell: &Rc<OnceCell<String>>,
    runs: &Rc<Cell<u32>>,
    gate: &Rc<Event>,
    value: &'static str,
) -> JoinHandle<String> {
    let (cell, runs, gate) = (Rc::clone(cell), Rc::clone(runs), Rc::clone(gate));
    spindle::spawn(move || {
        cell.get_or_init(|| {
            runs.set(runs.get() + 1);
            gate.wait();
            value.to_string()
        })
        .clone()
    })
}

/// One initialiser runs (and parks); the fibers that ask meanwhile wait
/// and get its value; `get` is `None` until then and `set` refuses.
#[test]
fn one_initialisation_the_others_wait() {
    spindle::run(|| {
        let cell = Rc::new(OnceCell::new());
        let runs = Rc::new(Cell::new(0));
        let gate = Rc::new(Event::new());
        let first = asker(&cell, &runs, &gate, "first");
        spindle::yield_now(); // it starts initialising and parks
        assert_eq!(cell.get(), None);
        assert_eq!(
            cell.set("set".into()),
            Err("set".into()),
            "set while initialising"
        );
        let others: Vec<_> = (0..3)
            .map(|_| asker(&cell, &runs, &gate, "other"))
            .collect();
        settle();
        for o in &others {
            assert_waiting_sync(o);
        }
        gate.set();
        assert_eq!(first.join().unwrap(), "first");
        for r in spindle::join_all(others) {
            assert_eq!(r.unwrap(), "first");
        }
        assert_eq!(runs.get(), 1);
        assert_eq!(cell.get().map(String::as_str), Some("first"));
        let cell = Rc::try_unwrap(cell).unwrap();
        assert_eq!(cell.into_inner().as_deref(), Some("first"));
    });
}

/// An initialiser that panics leaves the cell empty; the first waiter
/// runs its own initialiser, and the rest get that value.
#[test]
fn a_panicking_initialiser_lets_the_next_waiter_try() {
    spindle::run(|| {
        let cell = Rc::new(OnceCell::<String>::new());
        let runs = Rc::new(Cell::new(0));
        let c = Rc::clone(&cell);
        let panicker = spindle::spawn(move || {
            c.get_or_init(|| {
                spindle::sleep(Duration::from_millis(1));
                panic!("init failed");
            })
            .clone()
        });
        spindle::yield_now();
        let gate = Rc::new(Event::new());
        gate.set();
        let second = asker(&cell, &runs, &gate, "second");
        let third = asker(&cell, &runs, &gate, "third");
        match panicker.join() {
            Err(JoinError::Panicked(p)) => assert_eq!(panic_message(&*p), "init failed"),
            other => panic!("expected the initialiser's panic, got {other:?}"),
        }
        assert_eq!(second.join().unwrap(), "second");
        assert_eq!(third.join().unwrap(), "second");
        assert_eq!(runs.get(), 1);
    });
}

/// `get_or_try_init`: an error is returned to its caller, leaves the
/// cell empty and lets the next waiter try.
#[test]
fn a_failing_initialiser_lets_the_next_waiter_try() {
    spindle::run(|| {
        let cell = Rc::new(OnceCell::<u32>::new());
        let gate = Rc::new(Event::new());
        let (c, g) = (Rc::clone(&cell), Rc::clone(&gate));
        let failing = spindle::spawn(move || {
            c.get_or_try_init(|| {
                g.wait();
                Err("unreachable host")
            })
            .copied()
        });
        spindle::yield_now();
        let c = Rc::clone(&cell);
        let next = spindle::spawn(move || c.get_or_try_init(|| Ok::<u32, &str>(5)).copied());
        settle();
        assert_waiting_sync(&next);
        gate.set();
        assert_eq!(failing.join().unwrap(), Err("unreachable host"));
        assert_eq!(next.join().unwrap(), Ok(5));
        assert_eq!(cell.get(), Some(&5));
    });
}

/// An initialiser cancelled while it parks unwinds with its destructors
/// run and lets the next waiter try.
#[test]
fn a_cancelled_initialiser_lets_the_next_waiter_try() {
    spindle::run(|| {
        let cell = Rc::new(OnceCell::new());
        let c = Rc::clone(&cell);
        let (init, flag) = spawn_guarded(move || {
            *c.get_or_init(|| {
                spindle::sleep(Duration::from_secs(3600));
                1
            })
        });
        settle();
        let c = Rc::clone(&cell);
        let next = spindle::spawn(move || *c.get_or_init(|| 2));
        settle();
        assert_waiting_sync(&next);
        init.cancel();
        assert_cancelled(init);
        assert!(flag.get());
        settle();
        assert!(next.is_finished(), "the next waiter was not given its turn");
        assert_eq!(next.join().unwrap(), 2);
        assert_eq!(cell.get(), Some(&2));
    });
}

/// A waiter cancelled while it waits for another fiber's initialiser
/// unwinds; one cancelled after the wake-up that gave it its turn passes
/// the turn on. A waiter under `spindle::timeout` gets `Elapsed`. The
/// cell ends full with the value of the one initialiser that finished.
#[test]
fn waiters_cancelled_or_timed_out() {
    spindle::run(|| {
        let cell = Rc::new(OnceCell::new());
        let mut rest = None;
        // The main fiber initialises (and fails); the waiters queue meanwhile.
        let failed = cell.get_or_try_init(|| {
            let c = Rc::clone(&cell);
            let (waiter, flag) = spawn_guarded(move || *c.get_or_init(|| 1));
            let c = Rc::clone(&cell);
            let (told, told_flag) = spawn_guarded(move || *c.get_or_init(|| 2));
            let c = Rc::clone(&cell);
            let last = spindle::spawn(move || *c.get_or_init(|| 3));
            settle();
            cancel_blocked(waiter, &flag);
            let c = Rc::clone(&cell);
            let timed = spindle::spawn(move || {
                spindle::timeout(Duration::from_millis(1), move || *c.get_or_init(|| 4))
            });
            assert!(
                timed.join().unwrap().is_err(),
                "the timeout did not end the wait"
            );
            assert_waiting_sync(&told);
            assert_waiting_sync(&last);
            rest = Some((told, told_flag, last));
            Err(())
        });
        assert_eq!(failed, Err(()));
        // The failure woke `told` to try; it is cancelled before it runs.
        let (told, told_flag, last) = rest.unwrap();
        told.cancel();
        assert_cancelled(told);
        assert!(told_flag.get());
        settle();
        assert!(last.is_finished(), "the turn was not passed on");
        assert_eq!(last.join().unwrap(), 3);
        assert_eq!(cell.get(), Some(&3));
    });
}

/// An initialiser that asks its own cell panics instead of waiting for
/// itself forever.
#[test]
fn a_reentrant_initialiser_panics() {
    spindle::run(|| {
        let cell = Rc::new(OnceCell::new());
        let c = Rc::clone(&cell);
        let h = spindle::spawn(move || *c.get_or_init(|| *c.get_or_init(|| 1) + 1));
        match h.join() {
            Err(JoinError::Panicked(p)) => {
                assert!(
                    panic_message(&*p).contains("asked its own cell"),
                    "{}",
                    panic_message(&*p)
                )
            }
            other => panic!("expected a panic, got {other:?}"),
        }
        assert_eq!(cell.get(), None, "the cell is empty again");
        assert_eq!(*cell.get_or_init(|| 9), 9);
    });
}
