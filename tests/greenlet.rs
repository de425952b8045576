//! Greenlets: symmetric switching, values through switches, parents,
//! panics, dead greenlets, dropping, and the bookkeeping across nesting.

use std::cell::{Cell, OnceCell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use spindle::{Generator, Greenlet};

/// Counts its drops in a shared cell.
struct DropCounter(Rc<Cell<u32>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// A slot for a greenlet that is created after the closure that uses it.
type Slot<T> = Rc<OnceCell<Greenlet<T>>>;

fn get<T>(slot: &Slot<T>) -> &Greenlet<T> {
    slot.get().expect("slot filled before the first switch")
}

/// Python's greenlet example:
///
/// ```python
/// def test1():
///     print(12); gr2.switch(); print(34)
/// def test2():
///     print(56); gr1.switch(); print(78)
/// ```
///
/// here as a: 1, switch b, 2, switch b; b: 3, switch a, 4, return; root: 5.
#[test]
fn order_is_1_3_2_4_5() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let (slot_a, slot_b): (Slot<()>, Slot<()>) = Default::default();

    let (log_a, b_of_a) = (Rc::clone(&log), Rc::clone(&slot_b));
    let a = Greenlet::new(move |()| {
        log_a.borrow_mut().push(1);
        get(&b_of_a).switch(());
        log_a.borrow_mut().push(2);
        get(&b_of_a).switch(());
        unreachable!("nothing switches back to a");
    });
    let (log_b, a_of_b) = (Rc::clone(&log), Rc::clone(&slot_a));
    let b = Greenlet::new(move |()| {
        log_b.borrow_mut().push(3);
        get(&a_of_b).switch(());
        log_b.borrow_mut().push(4);
    });
    slot_a.set(a.clone()).unwrap();
    slot_b.set(b.clone()).unwrap();

    a.switch(());
    log.borrow_mut().push(5);

    assert_eq!(*log.borrow(), [1, 3, 2, 4, 5]);
    assert!(b.is_dead());
    assert!(!a.is_dead());
}

#[test]
fn values_pass_through_switches() {
    let (slot_a, slot_b): (Slot<String>, Slot<String>) = Default::default();
    let b_of_a = Rc::clone(&slot_b);
    let a = Greenlet::new(move |first: String| {
        let reply = get(&b_of_a).switch(format!("{first}+a1"));
        let reply = get(&b_of_a).switch(format!("{reply}+a2"));
        format!("{reply}+a-end")
    });
    let a_of_b = Rc::clone(&slot_a);
    let b = Greenlet::new(move |first: String| {
        let reply = get(&a_of_b).switch(format!("{first}+b1"));
        format!("{reply}+b-end")
    });
    slot_a.set(a.clone()).unwrap();
    slot_b.set(b.clone()).unwrap();

    // root -> a -> b -> a -> b, which returns to its parent, the root.
    assert_eq!(a.switch("go".into()), "go+a1+b1+a2+b-end");
    assert!(b.is_dead());
    // a is still suspended in its second switch; resume it.
    assert_eq!(a.switch("again".into()), "again+a-end");
    assert!(a.is_dead());
}

#[test]
fn switching_to_oneself_returns_the_value_at_once() {
    let g = Greenlet::new(|x: i32| {
        let me = Greenlet::current();
        let y = me.switch(x + 1);
        y * 10
    });
    assert_eq!(g.switch(4), 50);
    let root = Greenlet::<i32>::current();
    assert_eq!(root.switch(9), 9);
}

#[test]
fn a_result_goes_to_the_parent() {
    let root = Greenlet::<u32>::current();
    assert_eq!(root.parent(), None);
    assert!(!root.is_dead());

    let children: Rc<RefCell<Vec<Greenlet<u32>>>> = Rc::default();
    let kept = Rc::clone(&children);
    let parent = Greenlet::new(move |x: u32| {
        let child = Greenlet::new(|y: u32| y * 3);
        assert_eq!(child.parent(), Some(Greenlet::current()));
        kept.borrow_mut().push(child.clone());
        let from_child = child.switch(x);
        from_child + 1
    });
    assert_eq!(parent.parent(), Some(root));
    assert_eq!(parent.switch(5), 16);
    assert!(parent.is_dead());
    assert!(children.borrow()[0].is_dead());
}

#[test]
fn a_result_goes_to_the_parent_even_when_the_root_starts_the_child() {
    // parent makes child and hands it to the root; the root switches to the
    // child, whose result still goes to parent.
    let slot: Slot<i32> = Default::default();
    let kept = Rc::clone(&slot);
    let parent = Greenlet::new(move |x: i32| {
        kept.set(Greenlet::new(|y: i32| y - 1)).unwrap();
        let root = Greenlet::current().parent().unwrap();
        let from_child = root.switch(x);
        from_child * 100
    });
    assert_eq!(parent.switch(7), 7); // parent switched back to the root
    assert_eq!(get(&slot).switch(3), 200); // the child returns 2 to parent
    assert!(parent.is_dead());
}

#[test]
fn a_result_skips_dead_parents() {
    let slot: Slot<i32> = Default::default();
    let kept = Rc::clone(&slot);
    let parent = Greenlet::new(move |_| {
        kept.set(Greenlet::new(|y: i32| y + 1)).unwrap();
        -1 // dies at once; its child survives it
    });
    assert_eq!(parent.switch(0), -1);
    assert!(parent.is_dead());
    let child = get(&slot);
    assert_eq!(child.parent(), Some(parent));
    // parent is dead, so the result goes to the root.
    assert_eq!(child.switch(41), 42);
}

#[test]
fn a_panic_goes_to_the_parent_with_its_payload() {
    let parent = Greenlet::new(|x: i32| {
        let child = Greenlet::new(|y: i32| -> i32 { std::panic::panic_any(y * 2) });
        let caught = panic::catch_unwind(AssertUnwindSafe(|| child.switch(x))).unwrap_err();
        assert!(child.is_dead());
        *caught.downcast::<i32>().unwrap() + 1
    });
    assert_eq!(parent.switch(20), 41);
}

#[test]
fn a_panic_reaches_the_root() {
    let g = Greenlet::new(|()| {
        let nested = Greenlet::new(|()| panic!("{}", String::from("from deep down")));
        nested.switch(());
    });
    let payload = panic::catch_unwind(AssertUnwindSafe(|| g.switch(()))).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("from deep down")
    );
    assert!(g.is_dead());
    // The bookkeeping is back to the root: a new greenlet works.
    assert_eq!(Greenlet::new(|()| ()).parent(), Some(Greenlet::current()));
    assert_eq!(Greenlet::new(|x: u8| x + 1).switch(1), 2);
}

#[test]
fn switching_to_a_dead_greenlet_panics() {
    let g = Greenlet::new(|x: u8| x);
    assert_eq!(g.switch(1), 1);
    assert!(g.is_dead());
    let payload = panic::catch_unwind(AssertUnwindSafe(|| g.switch(2))).unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    assert!(message.contains("is dead"), "{message}");
}

#[test]
fn switching_to_a_dead_greenlet_from_a_greenlet_panics_there() {
    let dead = Greenlet::new(|x: u8| x);
    dead.switch(0);
    let g = Greenlet::new(move |x: u8| {
        match panic::catch_unwind(AssertUnwindSafe(|| dead.switch(x))) {
            Ok(_) => 0,
            Err(_) => x + 1,
        }
    });
    assert_eq!(g.switch(9), 10);
}

#[test]
fn dropping_the_last_handle_unwinds_a_suspended_greenlet() {
    let drops = Rc::new(Cell::new(0));
    let counter = Rc::clone(&drops);
    let g = Greenlet::new(move |()| {
        let _outer = DropCounter(Rc::clone(&counter));
        let root = Greenlet::current().parent().unwrap();
        loop {
            let _inner = DropCounter(Rc::clone(&counter));
            root.switch(());
        }
    });
    g.switch(());
    g.switch(());
    assert_eq!(drops.get(), 1); // one `_inner` went round the loop
    let other = g.clone();
    drop(g);
    assert_eq!(drops.get(), 1); // `other` keeps it alive
    drop(other);
    assert_eq!(drops.get(), 3);
}

#[test]
fn dropping_an_unstarted_greenlet_drops_its_function() {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCounter(Rc::clone(&drops));
    let g = Greenlet::new(move |()| drop(guard));
    drop(g);
    assert_eq!(drops.get(), 1);
}

#[test]
fn an_abandoned_greenlet_unwinds_when_the_trampoline_lets_go() {
    // `temporary` exists only in the trampoline once it has switched away:
    // the trampoline's handle is the last one, so it unwinds there.
    let drops = Rc::new(Cell::new(0));
    let counter = Rc::clone(&drops);
    let finisher = Greenlet::new(|x: u32| x * 2);
    let target = finisher.clone();
    let result = Greenlet::new(move |x: u32| {
        let _guard = DropCounter(counter);
        target.switch(x)
    })
    .switch(21);
    // finisher returns to its parent, the root.
    assert_eq!(result, 42);
    assert_eq!(drops.get(), 1);
}

#[test]
fn a_switch_from_inside_a_generator_suspends_the_whole_chain() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let (slot_a, slot_b): (Slot<u32>, Slot<u32>) = Default::default();

    let (log_a, b_of_a) = (Rc::clone(&log), Rc::clone(&slot_b));
    let a = Greenlet::new(move |x: u32| {
        // The generator runs on its own stack, resumed from a's; it switches
        // to b from there.
        let b = Rc::clone(&b_of_a);
        let log_g = Rc::clone(&log_a);
        let numbers = Generator::new(move |y| {
            let mut n = x;
            for _ in 0..3 {
                y.suspend(n);
                n = get(&b).switch(n);
                log_g.borrow_mut().push(format!("generator got {n}"));
            }
            n
        });
        let items: Vec<u32> = numbers.collect();
        log_a.borrow_mut().push(format!("a collected {items:?}"));
        items.iter().sum()
    });
    let (log_b, a_of_b) = (Rc::clone(&log), Rc::clone(&slot_a));
    let b = Greenlet::new(move |mut n: u32| loop {
        log_b.borrow_mut().push(format!("b got {n}"));
        n = get(&a_of_b).switch(n + 1);
    });
    slot_a.set(a.clone()).unwrap();
    slot_b.set(b.clone()).unwrap();

    assert_eq!(a.switch(10), 10 + 11 + 12);
    assert_eq!(
        *log.borrow(),
        [
            "b got 10",
            "generator got 11",
            "b got 11",
            "generator got 12",
            "b got 12",
            "generator got 13",
            "a collected [10, 11, 12]",
        ]
    );
    drop((a, b, slot_a, slot_b));
}

#[test]
fn greenlets_of_two_types_nest() {
    let outer = Greenlet::new(|s: String| {
        let inner = Greenlet::new(|n: usize| n * 2);
        // The usize world's root is this String greenlet.
        assert_eq!(inner.parent(), Some(Greenlet::<usize>::current()));
        let doubled = inner.switch(s.len());
        format!("{s}:{doubled}")
    });
    assert_eq!(outer.switch("four".into()), "four:8");
}

#[test]
fn switching_across_worlds_is_refused() {
    let drops = Rc::new(Cell::new(0));
    let counter = Rc::clone(&drops);
    let outer = Greenlet::new(move |x: u64| {
        let _guard = DropCounter(counter);
        let sibling = Greenlet::new(|y: u64| y);
        let inner = Greenlet::new(move |()| {
            // Inside a () greenlet inside a u64 greenlet: switching to
            // another u64 greenlet would suspend both worlds.
            let refused = panic::catch_unwind(AssertUnwindSafe(|| sibling.switch(1)));
            assert!(refused.is_err());
        });
        inner.switch(());
        x
    });
    assert_eq!(outer.switch(3), 3);
    assert_eq!(drops.get(), 1);
}

#[test]
fn long_ping_pong() {
    const HOPS: u32 = 100_000;
    let slot: Slot<u32> = Default::default();
    let ping_of_pong = Rc::clone(&slot);
    let pong = Greenlet::new(move |mut n: u32| {
        while n < HOPS {
            n = get(&ping_of_pong).switch(n + 1);
        }
        n
    });
    let target = pong.clone();
    let ping = Greenlet::new(move |mut n: u32| loop {
        n = target.switch(n + 1);
    });
    slot.set(ping.clone()).unwrap();
    // pong sees the odd numbers; the first past HOPS is HOPS + 1.
    assert_eq!(ping.switch(0), HOPS + 1);
}

/// Switches to a greenlet when dropped, and records what comes back.
struct SwitchOnDrop {
    to: Greenlet<u32>,
    value: u32,
    got: Rc<Cell<u32>>,
}

impl Drop for SwitchOnDrop {
    fn drop(&mut self) {
        self.got.set(self.to.switch(self.value));
    }
}

/// A greenlet suspended in a switch to the root, holding a `SwitchOnDrop`.
fn switch_on_drop(to: Greenlet<u32>, value: u32, got: &Rc<Cell<u32>>) -> Greenlet<u32> {
    let got = Rc::clone(got);
    let root = Greenlet::<u32>::current();
    let g = Greenlet::new(move |_| {
        let _s = SwitchOnDrop { to, value, got };
        root.switch(0);
        unreachable!("only dropped after its first switch");
    });
    g.switch(0);
    g
}

#[test]
fn a_greenlet_dropped_by_the_root_may_switch_while_it_unwinds() {
    let got = Rc::new(Cell::new(0));
    let doubler = Greenlet::new(|x: u32| x * 2);
    let a = switch_on_drop(doubler.clone(), 21, &got);
    drop(a); // its destructor runs a trampoline of its own
    assert_eq!(got.get(), 42);
    assert!(doubler.is_dead());
}

#[test]
fn a_greenlet_dropped_by_a_greenlet_switches_as_its_dropper() {
    let got = Rc::new(Cell::new(0));
    let doubler = Greenlet::new(|x: u32| x * 2); // its parent is the root
    let a = switch_on_drop(doubler.clone(), 5, &got);
    let b = Greenlet::new(move |x: u32| {
        drop(a); // a unwinds here, on top of b, and switches to doubler
        x + 1
    });
    // doubler's result goes to its parent, the root, while b is still in
    // a's destructor.
    assert_eq!(b.switch(1), 10);
    assert_eq!(got.get(), 0);
    assert!(!b.is_dead());
    // Back into b: the destructor's switch returns 7, then b returns 2.
    assert_eq!(b.switch(7), 2);
    assert_eq!(got.get(), 7);
    assert!(b.is_dead());
}

#[test]
fn dropping_a_greenlet_suspended_inside_a_generator_unwinds_both() {
    let drops = Rc::new(Cell::new(0));
    let (in_greenlet, in_generator) = (Rc::clone(&drops), Rc::clone(&drops));
    let root = Greenlet::<u8>::current();
    let a = Greenlet::new(move |_: u8| {
        let _a = DropCounter(in_greenlet);
        let mut numbers = Generator::new(move |y| {
            let _g = DropCounter(in_generator);
            // Suspends a, and the generator with it, from the generator's
            // stack.
            root.switch(1);
            y.suspend(());
        });
        numbers.next();
        0
    });
    assert_eq!(a.switch(0), 1);
    assert_eq!(drops.get(), 0);
    drop(a);
    assert_eq!(drops.get(), 2);
}

// Greenlets inside runtime tasks: each task has its own greenlet state, so a
// task that parks inside a greenlet leaves nothing behind that another task
// could switch through.

/// The issue's reproducer: two tasks each switch into a greenlet that sleeps
/// (so each task parks inside its greenlet); each gets its own result.
#[test]
fn greenlets_in_two_tasks_keep_their_results_apart() {
    let (a, b) = spindle::run(|| {
        let a = spindle::spawn(|| {
            let g1 = Greenlet::new(|v: u32| {
                spindle::sleep(Duration::from_millis(20));
                v + 1
            });
            g1.switch(1)
        });
        let b = spindle::spawn(|| {
            let g2 = Greenlet::new(|v: u32| {
                spindle::sleep(Duration::from_millis(40));
                v * 10
            });
            g2.switch(7)
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a, b), (2, 70));
}

/// The same with yields: every switch of every task happens while the other
/// task is parked inside a greenlet of the same type, many times over.
#[test]
fn tasks_ping_ponging_greenlets_while_parked_inside_them() {
    const ROUNDS: u32 = 200;
    let totals = spindle::run(|| {
        let tasks: Vec<_> = (0..3u32)
            .map(|t| {
                spindle::spawn(move || {
                    let root = Greenlet::<u32>::current();
                    let g = Greenlet::new(move |mut n: u32| loop {
                        spindle::yield_now(); // parks this task inside g
                        assert_eq!(Greenlet::<u32>::current().parent(), Some(root.clone()));
                        n = root.switch(n + t);
                    });
                    let mut n = 0;
                    for _ in 0..ROUNDS {
                        assert!(Greenlet::<u32>::current().parent().is_none());
                        n = g.switch(n);
                        spindle::yield_now(); // parks this task at its root
                    }
                    n
                })
            })
            .collect();
        spindle::join_all(tasks)
    });
    let totals: Vec<u32> = totals.into_iter().map(Result::unwrap).collect();
    assert_eq!(totals, [0, ROUNDS, 2 * ROUNDS]);
}

/// A task sees the root while another task is parked inside a greenlet, and
/// a greenlet it creates has the root as its parent.
#[test]
fn a_task_starts_at_the_root_while_another_is_inside_a_greenlet() {
    spindle::run(|| {
        let inside = Rc::new(Cell::new(false));
        let flag = Rc::clone(&inside);
        let a = spindle::spawn(move || {
            let g = Greenlet::new(move |()| {
                flag.set(true);
                spindle::sleep(Duration::from_millis(10));
                flag.set(false);
            });
            g.switch(());
        });
        let b = spindle::spawn(move || {
            spindle::yield_now();
            assert!(inside.get(), "task a is parked inside its greenlet");
            let current = Greenlet::<()>::current();
            assert_eq!(current.parent(), None, "task b runs at the root");
            let mine = Greenlet::new(|()| ());
            assert_eq!(mine.parent(), Some(current));
            mine.switch(());
            assert!(mine.is_dead());
        });
        a.join().unwrap();
        b.join().unwrap();
    });
}

/// Switching to a greenlet that another task is running (parked inside) is
/// refused with a panic in the switching task; the owner goes on unharmed.
#[test]
fn switching_to_a_greenlet_another_task_runs_panics() {
    spindle::run(|| {
        let slot: Slot<u32> = Default::default();
        let shared = Rc::clone(&slot);
        let owner = spindle::spawn(move || {
            let g = Greenlet::new(|v: u32| {
                spindle::sleep(Duration::from_millis(10));
                v + 1
            });
            shared.set(g.clone()).unwrap();
            g.switch(41)
        });
        let intruder = spindle::spawn(move || {
            spindle::yield_now();
            get(&slot).switch(0)
        });
        let err = intruder.join().unwrap_err();
        let message = match err {
            spindle::JoinError::Panicked(p) => p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
            other => panic!("expected a panic, got {other:?}"),
        };
        assert!(message.contains("already running"), "{message}");
        assert_eq!(owner.join().unwrap(), 42);
    });
}

/// A suspended greenlet belongs to no task: another task may switch to it,
/// and the values then come back to that task's root.
#[test]
fn a_suspended_greenlet_can_be_resumed_by_another_task() {
    spindle::run(|| {
        let g = spindle::spawn(|| {
            let root = Greenlet::<u32>::current();
            let g = Greenlet::new(move |mut n: u32| loop {
                n = root.switch(n * 2);
            });
            assert_eq!(g.switch(1), 2);
            g
        })
        .join()
        .unwrap();
        let other = spindle::spawn(move || {
            assert_eq!(g.switch(5), 10);
            assert_eq!(g.switch(6), 12);
        });
        other.join().unwrap();
    });
}

/// A task parked inside a `()` greenlet inside a `u64` greenlet does not
/// make another task's `u64` switches look like a cross-world switch.
#[test]
fn the_innermost_world_is_per_task() {
    spindle::run(|| {
        let a = spindle::spawn(|| {
            let outer = Greenlet::new(|x: u64| {
                let inner = Greenlet::new(|()| spindle::sleep(Duration::from_millis(10)));
                inner.switch(());
                x + 1
            });
            outer.switch(1)
        });
        let b = spindle::spawn(|| {
            spindle::yield_now();
            let root = Greenlet::<u64>::current();
            let outer = Greenlet::new(move |x: u64| {
                // Inside a u64 greenlet of this task: switching to the u64
                // root is a plain switch here.
                root.switch(x + 10)
            });
            outer.switch(5)
        });
        assert_eq!((a.join().unwrap(), b.join().unwrap()), (2, 15));
    });
}

/// Cancelling a task parked inside a greenlet unwinds the greenlet's stack
/// with the task's own greenlet state in place: destructors there still see
/// their greenlet as the current one.
#[test]
fn a_cancelled_task_unwinds_its_greenlet_as_the_current_one() {
    /// Records whether the current `u8` greenlet is the expected one when
    /// dropped.
    struct SeesCurrent(Rc<OnceCell<Greenlet<u8>>>, Rc<Cell<Option<bool>>>);
    impl Drop for SeesCurrent {
        fn drop(&mut self) {
            let me = self.0.get().cloned();
            self.1.set(Some(me == Some(Greenlet::<u8>::current())));
        }
    }
    let seen = Rc::new(Cell::new(None));
    let seen_in_task = Rc::clone(&seen);
    spindle::run(move || {
        let victim = spindle::spawn(move || {
            let slot: Rc<OnceCell<Greenlet<u8>>> = Default::default();
            let in_g = Rc::clone(&slot);
            let g = Greenlet::new(move |_: u8| {
                let _d = SeesCurrent(in_g, seen_in_task);
                spindle::sleep(Duration::from_secs(60));
                0
            });
            slot.set(g.clone()).unwrap();
            g.switch(0)
        });
        // Another task with greenlet state of its own runs the cancel.
        spindle::spawn(move || {
            let g = Greenlet::new(move |_: u8| {
                spindle::yield_now();
                victim.cancel();
                assert!(matches!(victim.join(), Err(spindle::JoinError::Cancelled)));
                1
            });
            assert_eq!(g.switch(0), 1);
        })
        .join()
        .unwrap();
    });
    assert_eq!(seen.get(), Some(true));
}

/// A runtime started inside a greenlet: its tasks start at the root, and
/// switching from a task to the greenlet that runs the whole runtime is
/// refused (it is running).
#[test]
fn a_runtime_inside_a_greenlet_gives_its_tasks_their_own_state() {
    let host: Slot<u16> = Default::default();
    let inner_host = Rc::clone(&host);
    let g = Greenlet::new(move |x: u16| {
        spindle::run(move || {
            let t = spindle::spawn(move || {
                assert_eq!(Greenlet::<u16>::current().parent(), None);
                let refused = panic::catch_unwind(AssertUnwindSafe(|| get(&inner_host).switch(1)));
                assert!(refused.is_err());
                let local = Greenlet::new(|y: u16| y + 1);
                local.switch(x)
            });
            t.join().unwrap()
        })
    });
    host.set(g.clone()).unwrap();
    assert_eq!(g.switch(3), 4);
}
