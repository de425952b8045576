//! `spindle::fiber_local!`: per-fiber values, dropped when the fiber ends
//! (returned, panicked, cancelled), falling back to per-thread outside a
//! fiber.

use std::cell::{Cell, RefCell};
use std::time::Duration;

thread_local! {
    /// What the `Noisy` destructors saw, per test thread.
    static DROPS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Records its number into `DROPS` when dropped.
struct Noisy(Cell<u32>);

impl Drop for Noisy {
    fn drop(&mut self) {
        DROPS.with_borrow_mut(|d| d.push(self.0.get()));
    }
}

spindle::fiber_local! {
    static NOISY: Noisy = Noisy(Cell::new(0));
    static COUNT: Cell<u32> = Cell::new(0);
    pub(crate) static TRAIL: RefCell<Vec<u32>> = RefCell::new(Vec::new());
}

fn drops() -> Vec<u32> {
    let mut d = DROPS.with_borrow_mut(std::mem::take);
    d.sort_unstable();
    d
}

#[test]
fn values_are_independent_per_fiber_and_dropped_once_each() {
    drops();
    spindle::run(|| {
        let hs: Vec<_> = (1..=10u32)
            .map(|i| {
                spindle::spawn(move || {
                    NOISY.with(|n| n.0.set(i));
                    COUNT.set(i);
                    spindle::yield_now(); // the others set theirs meanwhile
                    NOISY.with(|n| assert_eq!(n.0.get(), i));
                    COUNT.get()
                })
            })
            .collect();
        let values: Vec<u32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(values, (1..=10).collect::<Vec<_>>());
        // Each fiber's destructor ran once, before its join returned.
        assert_eq!(drops(), (1..=10).collect::<Vec<_>>());
        assert_eq!(COUNT.get(), 0, "the main fiber has its own value");
    });
}

#[test]
fn a_fiber_that_never_touches_it_creates_nothing() {
    drops();
    spindle::run(|| {
        spindle::spawn(|| 1).join().unwrap();
    });
    assert!(drops().is_empty());
}

#[test]
fn panicked_and_cancelled_fibers_drop_their_values() {
    drops();
    spindle::run(|| {
        let panics = spindle::spawn(|| {
            NOISY.with(|n| n.0.set(1));
            panic!("deliberate");
        });
        assert!(panics.join().unwrap_err().is_panic());
        let cancelled = spindle::spawn(|| {
            NOISY.with(|n| n.0.set(2));
            spindle::sleep(Duration::from_secs(60));
        });
        spindle::yield_now();
        assert!(drops() == [1], "the panicked fiber's value is gone");
        cancelled.cancel();
        assert!(cancelled.join().unwrap_err().is_cancelled());
        assert_eq!(drops(), [2]);
    });
    // Shutdown unwinds a sleeper: its value goes too.
    spindle::run(|| {
        spindle::spawn(|| {
            NOISY.with(|n| n.0.set(3));
            spindle::sleep(Duration::from_secs(60));
        });
        spindle::yield_now();
    });
    assert_eq!(drops(), [3]);
}

#[test]
fn done_callbacks_see_the_fiber_values_gone_and_run_after_the_drop() {
    drops();
    spindle::run(|| {
        let h = spindle::spawn(|| NOISY.with(|n| n.0.set(4)));
        h.add_done_callback(|_| {
            assert_eq!(DROPS.with_borrow(Vec::clone), [4]);
            // A callback that touches a fiber-local gets a fresh value,
            // dropped before the fiber ends.
            NOISY.with(|n| n.0.set(5));
        });
        h.join().unwrap();
        assert_eq!(drops(), [4, 5]);
    });
}

/// Records 99, then panics, when dropped.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        DROPS.with_borrow_mut(|d| d.push(99));
        panic!("destructor fails");
    }
}

spindle::fiber_local!(static BOMB: Bomb = Bomb);

#[test]
fn a_panicking_destructor_fails_the_fiber_not_the_scheduler() {
    drops();
    spindle::run(|| {
        let h = spindle::spawn(|| {
            BOMB.with(|_| ());
            NOISY.with(|n| n.0.set(6));
            7
        });
        let err = h.join().unwrap_err();
        assert_eq!(
            *err.into_panic().downcast::<&str>().unwrap(),
            "destructor fails"
        );
        // The other value was dropped too, and the runtime goes on.
        assert_eq!(drops(), [6, 99]);
        assert_eq!(spindle::spawn(|| 8).join().unwrap(), 8);
    });
}

#[test]
fn outside_a_fiber_it_is_per_thread() {
    TRAIL.with_borrow_mut(|t| t.push(1));
    assert_eq!(TRAIL.with_borrow(Vec::clone), [1]);
    let other = std::thread::spawn(|| TRAIL.with_borrow(Vec::len))
        .join()
        .unwrap();
    assert_eq!(other, 0);
    // A fiber on this thread does not see the thread's value.
    spindle::run(|| assert!(TRAIL.with_borrow(Vec::is_empty)));
    assert_eq!(TRAIL.take(), [1]);
}

#[test]
fn values_live_across_parks_and_refcell_helpers_work() {
    spindle::run(|| {
        let hs: Vec<_> = (0..3u32)
            .map(|i| {
                spindle::spawn(move || {
                    for j in 0..3 {
                        TRAIL.with_borrow_mut(|t| t.push(i * 10 + j));
                        spindle::sleep(Duration::from_millis(1));
                    }
                    TRAIL.replace(vec![])
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            let i = i as u32;
            assert_eq!(h.join().unwrap(), [i * 10, i * 10 + 1, i * 10 + 2]);
        }
    });
}

spindle::fiber_local!(static SELFISH: u32 = SELFISH.with(|v| *v + 1));

#[test]
fn a_recursive_initialiser_panics() {
    spindle::run(|| {
        let h = spindle::spawn(|| SELFISH.with(|v| *v));
        let msg = h.join().unwrap_err().into_panic();
        assert!(msg
            .downcast_ref::<&str>()
            .unwrap()
            .contains("its own initialiser"));
    });
}
