//! `WaitGroup`: `wait` returns once every `done` has happened; a negative count panics.

use super::*;

/// `wait` returns only after every `done`, and releases every fiber
/// waiting: none of them goes on before the last `done`.
#[test]
fn wait_returns_after_every_done() {
    spindle::run(|| {
        let wg = WaitGroup::new();
        let finished = Rc::new(Cell::new(0));
        for i in 0..5u64 {
            wg.add(1);
            let (wg, finished) = (wg.clone(), finished.clone());
            spindle::spawn(move || {
                spindle::sleep(Duration::from_millis(i));
                finished.set(finished.get() + 1);
                wg.done();
            });
        }
        assert_eq!(wg.count(), 5);
        wg.wait();
        assert_eq!(finished.get(), 5);
        assert_eq!(wg.count(), 0);

        wg.add(2);
        let released = Rc::new(Cell::new(0));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (wg, released) = (wg.clone(), released.clone());
                spindle::spawn(move || {
                    wg.wait();
                    released.set(released.get() + 1);
                })
            })
            .collect();
        settle();
        waiters.iter().for_each(assert_waiting_sync);
        wg.done();
        settle();
        assert_eq!(released.get(), 0, "released with the count at 1");
        wg.done();
        settle();
        assert_eq!(released.get(), 3);
        for r in spindle::join_all(waiters) {
            r.unwrap();
        }
    });
}

/// `done` with the count at zero panics (Go's "negative WaitGroup
/// counter"), inside a runtime or out, and leaves the count at zero.
#[test]
fn done_below_zero_panics() {
    let r = panic::catch_unwind(|| {
        spindle::run(|| {
            let wg = WaitGroup::new();
            wg.add(1);
            wg.done();
            wg.done();
        })
    });
    let msg = panic_message(&*r.unwrap_err());
    assert!(msg.contains("negative counter"), "{msg}");

    let wg = WaitGroup::new();
    let r = panic::catch_unwind(AssertUnwindSafe(|| wg.done()));
    let msg = panic_message(&*r.unwrap_err());
    assert!(msg.contains("WaitGroup::done"), "{msg}");
    assert_eq!(wg.count(), 0);
}

/// `wait` with the count at zero returns without suspending: a fiber
/// spawned just before it has not run when it returns.
#[test]
fn wait_at_zero_returns_at_once() {
    spindle::run(|| {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let h = spindle::spawn(move || r.set(true));
        WaitGroup::new().wait();
        assert!(!ran.get(), "wait suspended the caller");
        h.join().unwrap();
    });
}
