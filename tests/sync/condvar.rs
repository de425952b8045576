//! `Condvar`: `notify_one` wakes one, `notify_all` all; `wait_while`, `wait_timeout`; no lost wake-up.

use super::*;

type State = Rc<(Mutex<u32>, Condvar)>;

/// Spawns a fiber that locks, waits once (no loop: a missed wake-up
/// leaves it waiting), counts itself under the lock and logs `name`.
fn waiter(st: &State, l: &Log, name: &str) -> JoinHandle<()> {
    let (st, l, name) = (Rc::clone(st), Rc::clone(l), name.to_string());
    spindle::spawn(move || {
        let (m, cv) = &*st;
        let mut g = cv.wait(m.lock());
        *g += 1;
        push(&l, name);
    })
}

/// `notify_one` wakes exactly one waiter (the one that has waited
/// longest), and `notify_all` every waiter left.
#[test]
fn notify_one_wakes_exactly_one_and_notify_all_the_rest() {
    spindle::run(|| {
        let st: State = Rc::new((Mutex::new(0), Condvar::new()));
        let l = log();
        let ws: Vec<_> = (0..4).map(|i| waiter(&st, &l, &format!("w{i}"))).collect();
        settle();
        ws.iter().for_each(assert_waiting_sync);
        let (m, cv) = &*st;
        assert!(!m.is_locked(), "waiters release the lock while they wait");
        cv.notify_one();
        settle();
        assert_eq!(*l.borrow(), ["w0"]);
        cv.notify_one();
        settle();
        assert_eq!(*l.borrow(), ["w0", "w1"]);
        cv.notify_all();
        settle();
        assert_eq!(l.borrow().len(), 4);
        for r in spindle::join_all(ws) {
            r.unwrap();
        }
        assert_eq!(*m.lock(), 4);
    });
}

/// `wait_while` checks the condition first and after every wake-up,
/// and returns (holding the lock) only once it is false; if it is false
/// already, it returns without waiting.
#[test]
fn wait_while_returns_once_the_condition_is_false() {
    spindle::run(|| {
        let st: State = Rc::new((Mutex::new(0), Condvar::new()));
        let st2 = Rc::clone(&st);
        let w = spindle::spawn(move || {
            let (m, cv) = &*st2;
            let g = cv.wait_while(m.lock(), |v| *v < 3);
            *g
        });
        let (m, cv) = &*st;
        for v in 1..=3 {
            settle();
            assert!(
                !w.is_finished(),
                "wait_while returned with the value at {}",
                v - 1
            );
            *m.lock() = v;
            cv.notify_all();
        }
        assert_eq!(w.join().unwrap(), 3);
        let g = cv.wait_while(m.lock(), |v| *v < 3);
        assert_eq!(*g, 3);
    });
}

/// `wait_timeout` without a notification waits at least its timeout,
/// says `timed_out()`, and comes back holding the lock; notified in
/// time, it says it did not time out. `wait_timeout_while` says
/// `timed_out()` when the condition was still true at the end.
#[test]
fn wait_timeout_reports_whether_it_timed_out() {
    spindle::run(|| {
        let st: State = Rc::new((Mutex::new(0), Condvar::new()));
        let (m, cv) = &*st;
        let start = Instant::now();
        let (g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(20));
        assert!(r.timed_out());
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(m.is_locked(), "the lock is taken again");
        drop(g);

        let st2 = Rc::clone(&st);
        let notifier = spindle::spawn(move || {
            spindle::sleep(Duration::from_millis(1));
            let (m, cv) = &*st2;
            *m.lock() = 7;
            cv.notify_one();
        });
        let (g, r) = cv.wait_timeout(m.lock(), Duration::from_secs(30));
        assert!(!r.timed_out());
        assert_eq!(*g, 7);
        drop(g);
        notifier.join().unwrap();

        let (g, r) = cv.wait_timeout_while(m.lock(), Duration::from_millis(5), |v| *v == 7);
        assert!(r.timed_out());
        assert_eq!(*g, 7);
    });
}

/// No lost wake-up: a fiber that checks the condition under the lock
/// and then waits (once, no loop) always gets the `notify_one` that
/// follows a change made under the same lock, even when the notifier was
/// already queued for the lock and gets it the moment `wait` releases
/// it. And a notification with nobody waiting is not stored.
#[test]
fn no_wakeup_is_lost() {
    spindle::run(|| {
        for _ in 0..20 {
            let st = Rc::new((Mutex::new(false), Condvar::new()));
            let (st1, st2) = (Rc::clone(&st), Rc::clone(&st));
            let w = spindle::spawn(move || {
                let (m, cv) = &*st1;
                let mut g = m.lock();
                spindle::yield_now(); // the notifier queues for the lock
                if !*g {
                    g = cv.wait(g);
                }
                *g
            });
            let n = spindle::spawn(move || {
                let (m, cv) = &*st2;
                let mut g = m.lock();
                *g = true;
                cv.notify_one();
            });
            settle();
            assert!(w.is_finished(), "the waiter missed its wake-up");
            assert!(w.join().unwrap());
            n.join().unwrap();
        }

        let st: State = Rc::new((Mutex::new(0), Condvar::new()));
        st.1.notify_one();
        st.1.notify_all();
        let l = log();
        let w = waiter(&st, &l, "late");
        settle();
        assert_waiting_sync(&w);
        st.1.notify_one();
        w.join().unwrap();
    });
}
