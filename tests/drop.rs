//! Dropping coroutines: a suspended one is unwound so every destructor on
//! its stack runs exactly once; a never-started one drops its closure.

use std::cell::Cell;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use spindle::{Coroutine, CoroutineResult, Yielder};

struct Counted(Rc<Cell<u32>>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn fd_is_open(fd: i32) -> bool {
    std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists()
}

#[test]
fn suspended_coroutine_drops_rc_box_and_file_exactly_once() {
    let rc = Rc::new(());
    let box_drops = Rc::new(Cell::new(0));
    let fd = Rc::new(Cell::new(-1));
    let (rc2, bd, fd2) = (rc.clone(), box_drops.clone(), fd.clone());
    let mut co = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _rc = rc2;
        let _boxed = Box::new(Counted(bd));
        let file = File::open("/proc/self/status").unwrap();
        fd2.set(file.as_raw_fd());
        loop {
            y.suspend(());
        }
    });
    assert_eq!(co.resume(()), CoroutineResult::Yield(()));
    assert_eq!(Rc::strong_count(&rc), 2);
    assert!(fd_is_open(fd.get()));
    drop(co);
    assert_eq!(
        Rc::strong_count(&rc),
        1,
        "the Rc on the fiber's stack was dropped"
    );
    assert_eq!(box_drops.get(), 1, "the Box was dropped exactly once");
    assert!(!fd_is_open(fd.get()), "the file was closed");
}

#[test]
fn never_started_coroutine_drops_its_closure() {
    let drops = Rc::new(Cell::new(0));
    let c = Counted(drops.clone());
    let co = Coroutine::new(move |_: &Yielder<(), ()>, ()| {
        let _c = &c;
    });
    assert!(!co.started());
    drop(co);
    assert_eq!(drops.get(), 1);
}

#[test]
fn a_fiber_that_catches_the_unwind_and_suspends_gets_it_again() {
    let drops = Rc::new(Cell::new(0));
    let caught = Rc::new(Cell::new(0));
    let (d, c) = (drops.clone(), caught.clone());
    let mut co = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _outer = Counted(d.clone());
        let r = catch_unwind(AssertUnwindSafe(|| {
            let _inner = Counted(d.clone());
            y.suspend(());
        }));
        if r.is_err() {
            c.set(c.get() + 1);
        }
        // Carry on as if nothing happened: the next suspension unwinds again.
        y.suspend(());
        unreachable!("a dropped fiber was resumed normally");
    });
    assert_eq!(co.resume(()), CoroutineResult::Yield(()));
    drop(co);
    assert_eq!(caught.get(), 1);
    assert_eq!(drops.get(), 2, "inner and outer guards each dropped once");
}

#[test]
fn a_fiber_that_catches_the_unwind_and_returns_is_fine() {
    let returned = Rc::new(Cell::new(false));
    let r2 = returned.clone();
    let mut co = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(())));
        r2.set(true);
        Counted(Rc::new(Cell::new(0)))
    });
    co.resume(());
    drop(co);
    assert!(returned.get());
}

#[test]
fn a_destructor_that_panics_during_the_unwind_does_not_escape_drop() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("destructor panicked");
            }
        }
    }
    let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| {
        let _p = PanicsOnDrop;
        y.suspend(());
    });
    co.resume(());
    // Drop never panics: the destructor runs during an unwind (so it does
    // not panic here), and any payload would be discarded.
    drop(co);
}

#[test]
fn dropping_nested_suspended_coroutines_unwinds_both() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut outer = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _o = Counted(d.clone());
        let d2 = d.clone();
        let mut inner = Coroutine::new(move |iy: &Yielder<(), ()>, ()| {
            let _i = Counted(d2);
            iy.suspend(());
        });
        inner.resume(());
        y.suspend(());
        drop(inner);
    });
    outer.resume(());
    assert_eq!(drops.get(), 0);
    drop(outer);
    assert_eq!(drops.get(), 2);
}
