//! Done callbacks: `JoinHandle::add_done_callback` and `spindle::gather`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn describe(r: &Result<u32, spindle::JoinError>) -> String {
    match r {
        Ok(v) => format!("ok {v}"),
        Err(e) if e.is_cancelled() => "cancelled".to_string(),
        Err(_) => "panicked".to_string(),
    }
}

#[test]
fn returned_panicked_and_cancelled_fibers_call_back_before_join_returns() {
    let seen = spindle::run(|| {
        let seen = log();
        let ok = spindle::spawn(|| 5u32);
        let bad = spindle::spawn(|| -> u32 { panic!("deliberate") });
        let slow = spindle::spawn(|| {
            spindle::sleep(Duration::from_secs(60));
            0u32
        });
        for (name, h) in [("ok", &ok), ("bad", &bad), ("slow", &slow)] {
            let l = Rc::clone(&seen);
            h.add_done_callback(move |r| l.borrow_mut().push(format!("{name}: {}", describe(r))));
        }
        spindle::yield_now();
        slow.cancel();
        assert!(slow.join().unwrap_err().is_cancelled());
        // The results are left to join.
        assert_eq!(ok.join().unwrap(), 5);
        assert!(bad.join().unwrap_err().is_panic());
        Rc::try_unwrap(seen).unwrap().into_inner()
    });
    assert_eq!(seen, ["ok: ok 5", "bad: panicked", "slow: cancelled"]);
}

#[test]
fn a_finished_fiber_calls_back_at_once_on_the_callers_stack() {
    spindle::run(|| {
        let h = spindle::spawn(|| 1u32);
        spindle::yield_now();
        assert!(h.is_finished());
        let me = spindle::current().id();
        let called = Rc::new(RefCell::new(None));
        let c = Rc::clone(&called);
        h.add_done_callback(move |r| {
            *c.borrow_mut() = Some((describe(r), spindle::current().id()))
        });
        assert_eq!(*called.borrow(), Some(("ok 1".to_string(), me)));
        assert_eq!(h.join().unwrap(), 1);
    });
}

#[test]
fn callbacks_run_on_the_finishing_fiber_in_order_and_may_park() {
    spindle::run(|| {
        let seen = log();
        let h = spindle::spawn(|| 2u32);
        let fiber = h.id();
        for i in 0..3 {
            let l = Rc::clone(&seen);
            h.add_done_callback(move |_| {
                assert_eq!(spindle::current().id(), fiber);
                spindle::sleep(Duration::from_millis(1));
                l.borrow_mut().push(format!("cb {i}"));
            });
        }
        assert_eq!(h.join().unwrap(), 2);
        assert_eq!(*seen.borrow(), ["cb 0", "cb 1", "cb 2"]);
    });
}

#[test]
fn a_panicking_callback_is_contained() {
    spindle::run(|| {
        let seen = log();
        let h = spindle::spawn(|| 3u32);
        h.add_done_callback(|_| panic!("callback fails"));
        let l = Rc::clone(&seen);
        h.add_done_callback(move |r| l.borrow_mut().push(describe(r)));
        // The fiber's result is unchanged, the next callback ran, and the
        // scheduler goes on.
        assert_eq!(h.join().unwrap(), 3);
        assert_eq!(*seen.borrow(), ["ok 3"]);
        assert_eq!(spindle::spawn(|| 4).join().unwrap(), 4);
    });
}

#[test]
fn a_detached_fiber_still_calls_back() {
    let seen = spindle::run(|| {
        let seen = log();
        let h = spindle::spawn(|| 9u32);
        let l = Rc::clone(&seen);
        h.add_done_callback(move |r| l.borrow_mut().push(describe(r)));
        drop(h);
        spindle::yield_now();
        let v = seen.borrow().clone();
        v
    });
    assert_eq!(seen, ["ok 9"]);
}

#[test]
fn shutdown_cancels_and_calls_back() {
    let seen = log();
    let l = Rc::clone(&seen);
    // The log is shared with the runtime through a thread-local-free Rc:
    // run's closure is 'static, so hand it over by value.
    spindle::run(move || {
        let h = spindle::spawn(|| {
            spindle::sleep(Duration::from_secs(60));
            0u32
        });
        h.add_done_callback(move |r| l.borrow_mut().push(describe(r)));
    });
    assert_eq!(*seen.borrow(), ["cancelled"]);
}

#[test]
fn gather_calls_back_once_when_all_are_done() {
    spindle::run(|| {
        let seen = log();
        let group = spindle::gather((1..=3u32).map(|i| {
            spindle::spawn(move || {
                spindle::sleep(Duration::from_millis(u64::from(4 - i)));
                if i == 2 {
                    panic!("two fails");
                }
                i
            })
        }));
        let l = Rc::clone(&seen);
        group.add_done_callback(move |rs| {
            let all: Vec<String> = rs.iter().map(|r| describe(r)).collect();
            l.borrow_mut().push(all.join(", "));
        });
        assert!(!group.is_finished());
        let results = group.join();
        assert_eq!(*seen.borrow(), ["ok 1, panicked, ok 3"]);
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().ok(), Some(&1));
    });
}

#[test]
fn gather_of_finished_fibers_and_of_none_calls_back_at_once() {
    spindle::run(|| {
        let seen = log();
        let group = spindle::gather([spindle::spawn(|| 1u32), spindle::spawn(|| 2u32)]);
        spindle::yield_now();
        let l = Rc::clone(&seen);
        group.add_done_callback(move |rs| l.borrow_mut().push(format!("{} results", rs.len())));
        assert_eq!(*seen.borrow(), ["2 results"]);
        let empty = spindle::gather(Vec::<spindle::JoinHandle<u32>>::new());
        let l = Rc::clone(&seen);
        empty.add_done_callback(move |rs| l.borrow_mut().push(format!("{} results", rs.len())));
        assert_eq!(*seen.borrow(), ["2 results", "0 results"]);
        assert!(empty.join().is_empty());
    });
}

#[test]
fn a_cancelled_gather_joiner_cancels_the_group() {
    spindle::run(|| {
        let seen = log();
        let inner = spindle::spawn({
            let seen = Rc::clone(&seen);
            move || {
                let group = spindle::gather((0..2).map(|_| {
                    spindle::spawn(|| {
                        spindle::sleep(Duration::from_secs(60));
                        0u32
                    })
                }));
                group.add_done_callback(move |rs| {
                    let all: Vec<String> = rs.iter().map(|r| describe(r)).collect();
                    seen.borrow_mut().push(all.join(", "));
                });
                group.join();
            }
        });
        spindle::yield_now();
        inner.cancel();
        assert!(inner.join().unwrap_err().is_cancelled());
        spindle::yield_now();
        spindle::yield_now();
        assert_eq!(*seen.borrow(), ["cancelled, cancelled"]);
    });
}
