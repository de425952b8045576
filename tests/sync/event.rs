//! `Event`: `set` wakes every waiter, `clear`, `is_set`, `wait_timeout`,
//! cancellation while waiting.

use super::*;

/// `set` wakes every waiter in the order they started waiting; waits
/// after it return at once; `clear` makes them wait again.
#[test]
fn set_wakes_every_waiter_in_order() {
    spindle::run(|| {
        let ev = Rc::new(Event::new());
        let order = log();
        let waiters: Vec<_> = (0..4)
            .map(|i| {
                let (ev, order) = (ev.clone(), order.clone());
                spindle::spawn(move || {
                    ev.wait();
                    push(&order, format!("w{i}"));
                })
            })
            .collect();
        settle();
        for w in &waiters {
            assert_waiting_sync(w);
        }
        assert!(!ev.is_set());
        ev.set();
        assert!(ev.is_set());
        settle();
        assert_eq!(*order.borrow(), ["w0", "w1", "w2", "w3"]);
        for r in spindle::join_all(waiters) {
            r.unwrap();
        }
        ev.wait(); // set: returns at once
        ev.clear();
        assert!(!ev.is_set());
        let e = Rc::clone(&ev);
        let late = spindle::spawn(move || e.wait());
        settle();
        assert_waiting_sync(&late);
        ev.set();
        late.join().unwrap();
    });
}

/// A waiter woken by `set` returns even if the flag was cleared again
/// before it ran (the event happened).
#[test]
fn a_set_then_clear_still_wakes_the_waiters() {
    spindle::run(|| {
        let ev = Rc::new(Event::new());
        let e = Rc::clone(&ev);
        let waiter = spindle::spawn(move || e.wait_timeout(Duration::from_secs(3600)));
        settle();
        ev.set();
        ev.clear();
        settle();
        assert!(waiter.is_finished(), "the set was missed");
        assert!(waiter.join().unwrap());
        assert!(!ev.is_set());
    });
}

/// `wait_timeout` returns false after at least the timeout when nobody
/// sets the flag, true at once when it is set, and true when a set comes
/// before the timeout.
#[test]
fn wait_timeout() {
    spindle::run(|| {
        let ev = Rc::new(Event::new());
        let start = Instant::now();
        assert!(!ev.wait_timeout(Duration::from_millis(5)));
        assert!(start.elapsed() >= Duration::from_millis(5));
        let e = Rc::clone(&ev);
        let setter = spindle::spawn(move || {
            spindle::sleep(Duration::from_millis(2));
            e.set();
        });
        assert!(ev.wait_timeout(Duration::from_secs(3600)));
        setter.join().unwrap();
        assert!(ev.wait_timeout(Duration::ZERO));
    });
}

/// A fiber cancelled while it waits unwinds with its destructors run and
/// leaves the event consistent: the other waiters are still woken by
/// `set`; `spindle::timeout` around `wait` gives `Elapsed`.
#[test]
fn cancel_and_timeout_while_waiting() {
    spindle::run(|| {
        let ev = Rc::new(Event::new());
        let e = Rc::clone(&ev);
        let (cancelled, flag) = spawn_guarded(move || e.wait());
        let e = Rc::clone(&ev);
        let other = spindle::spawn(move || e.wait());
        settle();
        cancel_blocked(cancelled, &flag);
        assert_waiting_sync(&other);
        let e = Rc::clone(&ev);
        let elapsed = spindle::timeout(Duration::from_millis(2), move || e.wait());
        assert!(elapsed.is_err());
        ev.set();
        settle();
        assert!(other.is_finished(), "the other waiter missed the set");
        other.join().unwrap();
    });
}
