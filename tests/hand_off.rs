//! Hand-offs (the runtime docs, "Scheduling order"): a fiber that waits for
//! an unstarted fiber runs it next, a finishing fiber runs its waiting
//! joiner next, at most 64 in a row, and what that does to a tree of
//! spawns and joins.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

#[test]
fn a_joined_unstarted_fiber_runs_next_and_its_end_runs_the_joiner_next() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = Rc::clone(&log);
    spindle::run(move || {
        let lx = Rc::clone(&l);
        let x = spindle::spawn(move || lx.borrow_mut().push("x"));
        let ly = Rc::clone(&l);
        let y = spindle::spawn(move || ly.borrow_mut().push("y"));
        // y is behind x in the queue; joining it runs it first, and its end
        // runs us before x.
        y.join().unwrap();
        l.borrow_mut().push("main after y");
        x.join().unwrap();
        l.borrow_mut().push("main after x");
    });
    assert_eq!(*log.borrow(), ["y", "main after y", "x", "main after x"]);
}

#[test]
fn a_started_fiber_keeps_its_place_and_yields_never_hand_off() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = Rc::clone(&log);
    spindle::run(move || {
        let spawn_logger = |name: &'static str| {
            let l = Rc::clone(&l);
            spindle::spawn(move || {
                l.borrow_mut().push(format!("{name} 1"));
                spindle::yield_now();
                l.borrow_mut().push(format!("{name} 2"));
            })
        };
        let a = spawn_logger("a");
        let b = spawn_logger("b");
        spindle::yield_now(); // a and b start, and yield
        l.borrow_mut().push("main".into());
        // b has started: joining it leaves the queue's order alone, and a
        // (ahead of it) runs first.
        b.join().unwrap();
        l.borrow_mut().push("main after b".into());
        a.join().unwrap();
    });
    assert_eq!(
        *log.borrow(),
        ["a 1", "b 1", "main", "a 2", "b 2", "main after b"]
    );
}

#[test]
fn a_loop_of_spawn_and_join_lets_the_queue_run_every_64_hand_offs() {
    const ROUNDS: u32 = 6_400;
    let turns = Rc::new(Cell::new(0u32));
    let stop = Rc::new(Cell::new(false));
    let (t, s) = (Rc::clone(&turns), Rc::clone(&stop));
    spindle::run(move || {
        let other = spindle::spawn(move || {
            while !s.get() {
                t.set(t.get() + 1);
                spindle::yield_now();
            }
        });
        spindle::yield_now(); // `other` is in its loop
        let before = turns.get();
        for i in 0..ROUNDS {
            assert_eq!(spindle::spawn(move || i).join().unwrap(), i);
        }
        let during = turns.get() - before;
        stop.set(true);
        other.join().unwrap();
        // After a fiber taken from the queue, 64 hand-offs alternate between
        // us and a child; then the next child waits in the queue (if we
        // were the one taken from it), or our wake-up goes to the back (if
        // the child was), behind `other` both times. That is 32, then 33
        // iterations per turn of `other`. In FIFO order it would run at
        // every iteration; with unbounded hand-offs, never.
        let expected = ROUNDS * 2 / 65;
        assert!(
            (expected - 3..=expected + 3).contains(&during),
            "the yielding fiber ran {during} times during {ROUNDS} spawn+joins, expected about {expected}"
        );
    });
}

/// A tree of `depth` levels below this fiber, `fan` children each; tracks
/// how many fibers of it have started and not finished.
fn tree(depth: u32, fan: u32, live: &Rc<Cell<u32>>, peak: &Rc<Cell<u32>>) -> u64 {
    live.set(live.get() + 1);
    peak.set(peak.get().max(live.get()));
    let sum = if depth == 0 {
        1
    } else {
        let children: Vec<_> = (0..fan)
            .map(|_| {
                let (l, p) = (Rc::clone(live), Rc::clone(peak));
                spindle::spawn(move || tree(depth - 1, fan, &l, &p))
            })
            .collect();
        children.into_iter().map(|h| h.join().unwrap()).sum()
    };
    live.set(live.get() - 1);
    sum
}

#[test]
fn a_tree_of_spawns_and_joins_runs_depth_first() {
    let live = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let (l, p) = (Rc::clone(&live), Rc::clone(&peak));
    // 11,111 fibers, 10,000 leaves. In FIFO order the 1,111 inner fibers
    // would all have started before the first leaf runs.
    let leaves = spindle::run(move || tree(4, 10, &l, &p));
    assert_eq!(leaves, 10_000);
    assert_eq!(live.get(), 0);
    assert!(
        peak.get() <= 200,
        "{} fibers of the tree were started at once",
        peak.get()
    );
}
