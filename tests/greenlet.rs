//! Greenlets: symmetric switching, values through switches, parents,
//! panics, dead greenlets, dropping, and the bookkeeping across nesting.

use std::cell::{Cell, OnceCell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

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
