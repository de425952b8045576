//! Chains of fibers inside runtime tasks: a task that resumes a coroutine or
//! a generator, which parks (sleeps, yields, waits) from its own stack,
//! suspends the whole chain; other tasks meanwhile run chains of their own.
//! Nothing per thread may leak from one chain into another.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use spindle::generator::{Generator, YieldFrom};
use spindle::{Coroutine, CoroutineResult, JoinError};

/// Counts its drops in a shared cell.
struct DropCounter(Rc<Cell<u32>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// `from..to`, parking the task between items (from the generator's own
/// stack, two levels below the task's).
fn parking_range(from: u32, to: u32) -> Generator<u32, u32> {
    Generator::new(move |y| {
        for i in from..to {
            spindle::yield_now();
            y.suspend(i);
        }
        to - from
    })
}

#[test]
fn tasks_interleave_their_generator_chains() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let results = spindle::run({
        let log = Rc::clone(&log);
        move || {
            let tasks: Vec<_> = (0..3u32)
                .map(|t| {
                    let log = Rc::clone(&log);
                    spindle::spawn(move || {
                        // Delegation: the outer generator yields from an
                        // inner one, which parks the task mid-chain.
                        let outer = Generator::new(move |y| {
                            let n = y.yield_from(parking_range(t * 10, t * 10 + 4));
                            y.suspend(100 + n);
                        });
                        let mut items = Vec::new();
                        for item in outer {
                            log.borrow_mut().push(t);
                            items.push(item);
                        }
                        items
                    })
                })
                .collect();
            spindle::join_all(tasks)
        }
    });
    let results: Vec<Vec<u32>> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        results,
        [
            vec![0, 1, 2, 3, 104],
            vec![10, 11, 12, 13, 104],
            vec![20, 21, 22, 23, 104],
        ]
    );
    // Round robin: the chains really took turns.
    assert_eq!(log.borrow()[..6], [0, 1, 2, 0, 1, 2]);
}

#[test]
fn coroutines_parked_mid_chain_keep_their_values() {
    let sums = spindle::run(|| {
        let tasks: Vec<_> = (1..=4u64)
            .map(|t| {
                spindle::spawn(move || {
                    let mut co = Coroutine::new(move |y, mut n: u64| {
                        for _ in 0..50 {
                            spindle::sleep(Duration::from_micros(50 * t));
                            n = y.suspend(n * t);
                        }
                        n
                    });
                    let mut sum = 0;
                    let mut input = 1;
                    loop {
                        match co.resume(input) {
                            CoroutineResult::Yield(v) => {
                                sum += v;
                                input += 1;
                            }
                            CoroutineResult::Return(r) => break sum + r,
                        }
                    }
                })
            })
            .collect();
        spindle::join_all(tasks)
    });
    let sums: Vec<u64> = sums.into_iter().map(Result::unwrap).collect();
    // Task t yields t * (1 + 2 + ... + 50) and returns 51.
    let expected: Vec<u64> = (1..=4).map(|t| t * 1275 + 51).collect();
    assert_eq!(sums, expected);
}

/// Another task cannot resume a coroutine that a parked task is inside:
/// it is borrowed for the whole resume, so the attempt panics.
#[test]
fn resuming_a_coroutine_another_task_is_inside_panics() {
    spindle::run(|| {
        type Shared = Rc<RefCell<Coroutine<(), (), u32>>>;
        let co: Shared = Rc::new(RefCell::new(Coroutine::new(|_y, ()| {
            spindle::sleep(Duration::from_millis(10));
            7
        })));
        let (mine, theirs) = (Rc::clone(&co), Rc::clone(&co));
        let owner = spindle::spawn(move || mine.borrow_mut().resume(()).as_return());
        let intruder = spindle::spawn(move || {
            spindle::yield_now();
            let tried = panic::catch_unwind(AssertUnwindSafe(|| theirs.borrow_mut().resume(())));
            tried.is_err()
        });
        assert!(intruder.join().unwrap(), "the second resume was refused");
        assert_eq!(owner.join().unwrap(), Some(7));
    });
}

/// Cancelling a task parked three fibers deep unwinds every level once.
#[test]
fn cancelling_a_task_parked_mid_chain_unwinds_every_level() {
    let drops = Rc::new(Cell::new(0));
    let counters = [(); 3].map(|()| Rc::clone(&drops));
    spindle::run(move || {
        let [in_task, in_coroutine, in_generator] = counters;
        let victim = spindle::spawn(move || {
            let _t = DropCounter(in_task);
            let mut co: Coroutine<(), (), ()> = Coroutine::new(move |_y, ()| {
                let _c = DropCounter(in_coroutine);
                let mut g = Generator::new(move |y| {
                    let _g = DropCounter(in_generator);
                    spindle::sleep(Duration::from_secs(60));
                    y.suspend(());
                });
                g.next();
            });
            co.resume(());
            unreachable!("cancelled while parked");
        });
        spindle::spawn(move || {
            spindle::yield_now();
            victim.cancel();
            assert!(matches!(victim.join(), Err(JoinError::Cancelled)));
        })
        .join()
        .unwrap();
    });
    assert_eq!(drops.get(), 3);
}

/// A runtime that ends with a task parked mid-chain unwinds the chain.
#[test]
fn shutdown_unwinds_chains_left_parked() {
    let drops = Rc::new(Cell::new(0));
    let (in_task, in_generator) = (Rc::clone(&drops), Rc::clone(&drops));
    spindle::run(move || {
        spindle::spawn(move || {
            let _t = DropCounter(in_task);
            let mut g = Generator::new(move |y| {
                let _g = DropCounter(in_generator);
                spindle::sleep(Duration::from_secs(60));
                y.suspend(1u8);
            });
            g.next()
        });
        spindle::yield_now(); // the task parks inside its generator
    });
    assert_eq!(drops.get(), 2);
}
