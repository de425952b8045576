//! A fiber takes its stack at its first resume, not at its spawn: one that
//! has not started holds none, one cancelled (or shut down) before it
//! starts never takes one, one whose stack cannot be had fails through its
//! join handle while the runtime goes on, and a dump shows one that has
//! not started. (An overflow on a stack taken at a first resume is in
//! `overflow.rs`.)

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};

use spindle::stack::{Stack, StackPool};
use spindle::{JoinError, TaskState};

/// The stack counts are per process: the tests that read them take turns.
/// A test that ran before may still be tearing down its thread (and give
/// a stack back) while the next one counts, so counts are compared with
/// `<=`: they can only fall because of another test, never rise.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn live_stacks() -> usize {
    StackPool::stats().live
}

struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn a_fiber_takes_no_stack_until_its_first_resume() {
    let _serial = serial();
    spindle::run(|| {
        let before = live_stacks();
        let b = StackPool::stats();
        let handles: Vec<_> = (0..100u32).map(|i| spindle::spawn(move || i)).collect();
        let a = StackPool::stats();
        assert!(
            live_stacks() <= before,
            "spawning took stacks: {b:?} -> {a:?}"
        );
        let sum: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 4950);
        // Each ran on a stack and gave it back.
        assert!(live_stacks() <= before);
    });
}

#[test]
fn short_fibers_in_a_row_reuse_one_warm_stack() {
    let _serial = serial();
    spindle::run(|| {
        let before = StackPool::stats();
        for i in 0..1000u32 {
            assert_eq!(spindle::spawn(move || i + 1).join().unwrap(), i + 1);
        }
        let after = StackPool::stats();
        // The first may take a slot from the allocator; the others take
        // its stack back from this thread's pool.
        assert!(
            after.allocated - before.allocated <= 1,
            "{before:?} -> {after:?}: short fibers did not reuse a stack"
        );
    });
}

#[test]
fn cancelling_a_fiber_that_never_started_drops_its_closure_without_a_stack() {
    let _serial = serial();
    let dropped = Rc::new(Cell::new(0));
    let ran = Rc::new(Cell::new(false));
    let (d, r) = (dropped.clone(), ran.clone());
    spindle::run(move || {
        let before = live_stacks();
        let guard = Counted(d.clone());
        let r2 = r.clone();
        let h = spindle::spawn(move || {
            let _g = guard;
            r2.set(true);
        });
        h.cancel();
        assert!(live_stacks() <= before, "the spawn took a stack");
        // A fiber that watches the stack count while the cancelled one is
        // abandoned: it runs after it in FIFO order.
        let watcher = spindle::spawn(live_stacks);
        assert!(matches!(h.join(), Err(JoinError::Cancelled)));
        assert_eq!(d.get(), 1, "the closure was not dropped");
        // The watcher itself holds one stack; the cancelled fiber none.
        assert!(watcher.join().unwrap() <= before + 1);
    });
    assert!(!ran.get(), "a cancelled fiber ran");
    assert_eq!(dropped.get(), 1);
}

#[test]
fn a_panicking_destructor_of_an_unstarted_cancelled_fiber_reaches_its_joiner() {
    let _serial = serial();
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("boom in drop");
        }
    }
    spindle::run(|| {
        let bomb = Bomb;
        let h = spindle::spawn(move || drop(bomb));
        h.cancel();
        match h.join() {
            Err(e @ JoinError::Panicked(_)) => {
                assert_eq!(e.to_string(), "fiber panicked: boom in drop");
            }
            other => panic!("expected the destructor's panic, got {other:?}"),
        }
        // The runtime goes on.
        assert_eq!(spindle::spawn(|| 5).join().unwrap(), 5);
    });
}

#[test]
fn fibers_that_never_started_are_dropped_at_shutdown_without_stacks() {
    let _serial = serial();
    let dropped = Rc::new(Cell::new(0));
    let d = dropped.clone();
    let before = live_stacks();
    let rt = spindle::Runtime::new().unwrap();
    let live_at_return = rt.block_on(move || {
        for _ in 0..500 {
            let guard = Counted(d.clone());
            spindle::spawn(move || drop(guard));
        }
        live_stacks()
    });
    drop(rt);
    assert_eq!(dropped.get(), 500, "closures of unstarted fibers leaked");
    // Only main held a stack when it returned, and nothing holds one now.
    assert!(live_at_return <= before + 1, "{live_at_return} stacks live");
    assert!(live_stacks() <= before);
}

#[test]
fn no_stack_at_the_first_resume_fails_the_fiber_not_the_runtime() {
    let _serial = serial();
    spindle::run(|| {
        // A stack as large as the address space: passes the argument checks
        // at spawn, then cannot be mapped at the first resume.
        let doomed = spindle::Builder::new()
            .name("too big".into())
            .stack_size(Stack::MAX_SIZE)
            .spawn(|| 1)
            .expect("spawning checks the arguments only");
        let fine = spindle::spawn(|| 2);
        match doomed.join() {
            Err(e @ JoinError::Panicked(_)) => {
                let m = e.to_string();
                assert!(
                    m.contains("fiber 'too big'") && m.contains("no stack for it"),
                    "{m}"
                );
            }
            other => panic!("expected the no-stack error, got {other:?}"),
        }
        assert_eq!(fine.join().unwrap(), 2);
        assert_eq!(spindle::spawn(|| 3).join().unwrap(), 3);
    });
}

#[test]
fn bad_stack_arguments_still_fail_the_spawn() {
    let _serial = serial();
    spindle::run(|| {
        let e = spindle::Builder::new()
            .guard_pages(0)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let e = spindle::Builder::new()
            .stack_size(1)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        // A closure too big for its stack, inline or boxed.
        let big = [7u8; 40 * 1024];
        let e = spindle::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || black_box(big)[0])
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    });
}

#[test]
fn large_closures_are_boxed_and_run() {
    let _serial = serial();
    spindle::run(|| {
        let big = [3u64; 64];
        let small = 4u64;
        let a = spindle::spawn(move || black_box(big).iter().sum::<u64>());
        let b = spindle::spawn(move || small * 2);
        assert_eq!(a.join().unwrap(), 192);
        assert_eq!(b.join().unwrap(), 8);
    });
}

#[test]
fn a_dump_shows_a_fiber_that_has_not_started() {
    let _serial = serial();
    spindle::run(|| {
        let h = spindle::Builder::new()
            .name("later".into())
            .stack_size(64 * 1024)
            .spawn(|| ())
            .unwrap();
        let line = line!() - 2;
        let dump = spindle::dump();
        let f = dump
            .fibers()
            .iter()
            .find(|f| f.name() == Some("later"))
            .expect("the unstarted fiber is in the dump");
        assert_eq!(f.state(), TaskState::Ready);
        assert_eq!(
            (f.spawned_at().file(), f.spawned_at().line()),
            (file!(), line)
        );
        assert_eq!(f.stack_size(), 64 * 1024);
        assert!(f.stack_used().is_none() && f.backtrace().is_empty());
        h.join().unwrap();
    });
}

#[test]
fn a_placed_fiber_with_no_stack_reports_cancelled_on_either_worker() {
    let _serial = serial();
    let rt = spindle::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        for worker in [0, 1] {
            let h = spindle::Builder::new()
                .name("too big".into())
                .stack_size(Stack::MAX_SIZE)
                .worker(worker)
                .spawn(|| 1)
                .expect("spawning checks the arguments only");
            assert!(
                matches!(h.join(), Err(JoinError::Cancelled)),
                "worker {worker}"
            );
            // The worker goes on.
            assert_eq!(
                spindle::spawn_on(worker, move || worker + 1)
                    .join()
                    .unwrap(),
                worker + 1
            );
        }
    });
}
