//! `block_on` and `run` with closures that borrow from the caller: the
//! main fiber is finished or unwound before they return or unwind.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

/// Records into borrowed data when dropped: how a test sees that the main
/// fiber's frames were unwound while the borrow was alive.
struct Recorder<'a>(&'a RefCell<Vec<&'static str>>, &'static str);

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().push(self.1);
    }
}

#[test]
fn run_borrows_a_local_vec_and_returns_a_borrow() {
    let data: Vec<u64> = (1..=3).collect();
    let sum: u64 = spindle::run(|| {
        let h = spindle::spawn(|| 10u64);
        data.iter().sum::<u64>() + h.join().unwrap()
    });
    assert_eq!(sum, 16);
    let largest: &u64 = spindle::run(|| data.iter().max().unwrap());
    assert_eq!(*largest, 3);
}

#[test]
fn block_on_borrows_mutably_across_parks() {
    let rt = spindle::Runtime::new().unwrap();
    let mut log = Vec::new();
    rt.block_on(|| {
        for i in 0..3 {
            spindle::sleep(Duration::from_millis(1));
            log.push(i);
        }
    });
    rt.block_on(|| log.push(3));
    assert_eq!(log, [0, 1, 2, 3]);
}

#[test]
fn a_panicking_main_fiber_drops_its_borrows_before_block_on_unwinds() {
    let seen = RefCell::new(Vec::new());
    let rt = spindle::Runtime::new().unwrap();
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(|| {
            let _r = Recorder(&seen, "main unwound");
            spindle::sleep(Duration::from_millis(1));
            panic!("main fails");
        })
    }));
    assert!(r.is_err());
    // Forgetting the runtime cannot leave the main fiber alive: it is gone.
    std::mem::forget(rt);
    assert_eq!(*seen.borrow(), ["main unwound"]);
}

#[test]
fn a_deadlocked_main_fiber_is_unwound_before_the_report_is_raised() {
    let seen = RefCell::new(Vec::new());
    let rt = spindle::Runtime::new().unwrap();
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(|| {
            let _r = Recorder(&seen, "main unwound");
            seen.borrow_mut().push("parking for ever");
            spindle::park(); // nobody unparks: a deadlock
            seen.borrow_mut().push("never");
        })
    }));
    let report = r.unwrap_err();
    let report = report.downcast_ref::<String>().unwrap();
    assert!(report.contains("deadlock"), "{report}");
    std::mem::forget(rt);
    assert_eq!(*seen.borrow(), ["parking for ever", "main unwound"]);
}
