//! Panics inside fibers: caught at the fiber's root, re-raised in the
//! resumer with the original payload; destructors run; the coroutine is done.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use spindle::{Coroutine, CoroutineResult, Yielder};

struct SetOnDrop(Rc<Cell<u32>>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[derive(Debug, PartialEq)]
struct CustomPayload(u64);

#[test]
fn payload_reaches_the_resumer_and_destructors_ran() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut co = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _guard = SetOnDrop(d);
        y.suspend(());
        std::panic::panic_any(CustomPayload(42));
    });
    assert_eq!(co.resume(()), CoroutineResult::Yield(()));
    let err = catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
    assert_eq!(
        err.downcast_ref::<CustomPayload>(),
        Some(&CustomPayload(42))
    );
    assert_eq!(
        drops.get(),
        1,
        "the guard on the fiber's stack was dropped once"
    );
    assert!(co.done());
    drop(co);
    assert_eq!(
        drops.get(),
        1,
        "dropping a finished coroutine drops nothing again"
    );
}

#[test]
fn string_panic_message_is_kept() {
    let mut co =
        Coroutine::new(|_: &Yielder<u32, ()>, n: u32| -> () { panic!("fiber failed: {n}") });
    let err = catch_unwind(AssertUnwindSafe(|| co.resume(7))).unwrap_err();
    assert_eq!(
        err.downcast_ref::<String>().map(String::as_str),
        Some("fiber failed: 7")
    );
}

#[test]
fn a_panic_in_a_nested_fiber_travels_up_both_levels() {
    let mut outer = Coroutine::new(|_: &Yielder<(), ()>, ()| {
        let mut inner = Coroutine::new(|_: &Yielder<(), ()>, ()| -> () { panic!("deep") });
        inner.resume(());
    });
    let err = catch_unwind(AssertUnwindSafe(|| outer.resume(()))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"deep"));
    assert!(outer.done());
}

#[test]
fn the_fiber_can_catch_its_own_panic_and_go_on() {
    let mut co = Coroutine::new(|y: &Yielder<(), &'static str>, ()| {
        let r = catch_unwind(|| panic!("inside"));
        y.suspend(if r.is_err() { "caught" } else { "not caught" });
        "finished"
    });
    assert_eq!(co.resume(()), CoroutineResult::Yield("caught"));
    assert_eq!(co.resume(()), CoroutineResult::Return("finished"));
}

#[test]
fn other_coroutines_are_unaffected_by_a_panic() {
    let mut good = Coroutine::new(|y: &Yielder<(), u32>, ()| {
        y.suspend(1);
        y.suspend(2);
        3
    });
    let mut bad = Coroutine::new(|_: &Yielder<(), u32>, ()| -> u32 { panic!("bad") });
    assert_eq!(good.resume(()), CoroutineResult::Yield(1));
    assert!(catch_unwind(AssertUnwindSafe(|| bad.resume(()))).is_err());
    assert_eq!(good.resume(()), CoroutineResult::Yield(2));
    assert_eq!(good.resume(()), CoroutineResult::Return(3));
}
