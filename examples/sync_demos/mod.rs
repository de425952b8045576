//! The tour's part on the waits that are not channels: a value loaded once
//! by a fiber that parks while others wait for it (`OnceCell`), a starting
//! gun for several fibers (`Event`), and a write-preferring `RwLock` whose
//! late reader queues behind a waiting writer.
//!
//! The demo writes its lines to a [`Log`] (the one of `runtime_demos`), so
//! the tests can check them. Include this file with
//! `#[path = "../examples/sync_demos/mod.rs"] mod sync_demos;`, after
//! `runtime_demos`.
#![allow(dead_code)]

use std::rc::Rc;
use std::time::Duration;

use spindle::sync::{Event, OnceCell, RwLock};

use super::runtime_demos::Log;

/// Three fibers ask a `OnceCell` for a configuration that the first of them
/// loads with a 10 ms sleep; then an `Event` releases three waiters at
/// once; then two readers hold an `RwLock`, a writer waits for them, and a
/// reader that comes after the writer goes after it (write-preferring, so a
/// stream of readers cannot starve a writer).
pub fn waits(log: &Log) {
    spindle::run(|| {
        // OnceCell: one load, every asker gets the same value.
        let config: Rc<OnceCell<String>> = Rc::new(OnceCell::new());
        let loads = Rc::new(std::cell::Cell::new(0));
        let askers: Vec<_> = (1..=3)
            .map(|i| {
                let (config, loads) = (Rc::clone(&config), Rc::clone(&loads));
                spindle::spawn(move || {
                    let value = config.get_or_init(|| {
                        loads.set(loads.get() + 1);
                        spindle::sleep(Duration::from_millis(10)); // parks
                        format!("config loaded by fiber {i}")
                    });
                    value.clone()
                })
            })
            .collect();
        let seen: Vec<String> = spindle::join_all(askers)
            .into_iter()
            .map(|r| r.expect("an asker finishes"))
            .collect();
        let same = seen.iter().all(|s| *s == seen[0]);
        log.line(format!(
            "OnceCell: {}; {} fibers saw it, loaded {} time(s){}",
            seen[0],
            seen.len(),
            loads.get(),
            if same { "" } else { " (they differ!)" }
        ));

        // Event: a starting gun.
        let gun = Rc::new(Event::new());
        let runners: Vec<_> = (1..=3)
            .map(|i| {
                let gun = Rc::clone(&gun);
                spindle::spawn(move || {
                    gun.wait();
                    i
                })
            })
            .collect();
        spindle::yield_now(); // every runner is waiting now
        gun.set();
        let started = spindle::join_all(runners).len();
        log.line(format!("Event: set once, {started} waiting fibers ran"));

        // RwLock: readers 1 and 2 in, the writer waits, reader 3 comes after
        // the writer and so goes after it.
        let lock = Rc::new(RwLock::new(0));
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let spawn_reader = |name: &'static str| {
            let (lock, order) = (Rc::clone(&lock), Rc::clone(&order));
            spindle::spawn(move || {
                let guard = lock.read();
                order.borrow_mut().push(format!("{name} read {}", *guard));
                spindle::sleep(Duration::from_millis(5));
            })
        };
        let r1 = spawn_reader("reader 1");
        let r2 = spawn_reader("reader 2");
        spindle::yield_now(); // both readers hold the lock
        let writer = {
            let (lock, order) = (Rc::clone(&lock), Rc::clone(&order));
            spindle::spawn(move || {
                let mut guard = lock.write();
                *guard += 1;
                order.borrow_mut().push(format!("writer wrote {}", *guard));
            })
        };
        spindle::yield_now(); // the writer waits for the readers
        let r3 = spawn_reader("reader 3");
        for h in [r1, r2, writer, r3] {
            h.join().expect("a lock user finishes");
        }
        log.line(format!("RwLock: {}", order.borrow().join(", ")));
    });
}

/// A tour section: title, one line of what it shows, and the demo.
pub type Section = (&'static str, &'static str, fn() -> Vec<String>);

/// The demo as a tour section.
pub const SECTIONS: &[Section] = &[(
    "Waits: OnceCell, Event, RwLock",
    "A value loaded once while others wait; a starting gun; a writer not starved by readers.",
    || {
        let log = Log::quiet();
        waits(&log);
        log.lines()
    },
)];
