//! The scheduler: order, timers, join, cancel, timeout, park, deadlock,
//! and 10,000 fibers. (fds and blocking offload: `runtime_io.rs`.)

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle::runtime::wait_readable;
use spindle::{JoinError, JoinHandle, Runtime, TaskState};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

/// Sets its flag when dropped: proves a destructor ran.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn round_robin_order_is_exact() {
    let l = log();
    let l2 = l.clone();
    spindle::run(move || {
        let hs: Vec<_> = ["A", "B", "C"]
            .into_iter()
            .map(|name| {
                let l = l2.clone();
                spindle::spawn(move || {
                    for i in 0..3 {
                        push(&l, format!("{name}{i}"));
                        spindle::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(
        *l.borrow(),
        ["A0", "B0", "C0", "A1", "B1", "C1", "A2", "B2", "C2"]
    );

    // The main fiber takes its turn like any other: it is first in the
    // queue, and a spawned fiber queues behind the fibers already there.
    let l = log();
    let l2 = l.clone();
    spindle::run(move || {
        let mk = |name: &'static str| {
            let l = l2.clone();
            spindle::spawn(move || {
                for i in 0..2 {
                    push(&l, format!("{name}{i}"));
                    spindle::yield_now();
                }
            })
        };
        let a = mk("A");
        push(&l2, "main0");
        spindle::yield_now();
        let b = mk("B");
        push(&l2, "main1");
        spindle::yield_now();
        push(&l2, "main2");
        a.join().unwrap();
        b.join().unwrap();
    });
    assert_eq!(
        *l.borrow(),
        ["main0", "A0", "main1", "A1", "B0", "main2", "B1"]
    );
}

#[test]
fn equal_deadlines_wake_in_the_order_they_were_set() {
    let l = log();
    let l2 = l.clone();
    spindle::run(move || {
        let deadline = Instant::now() + Duration::from_millis(30);
        // Fiber i yields 4 - i times first, so they go to sleep in the
        // order 4, 3, 2, 1, 0: the wake order must follow that, not ids.
        let hs: Vec<_> = (0..5)
            .map(|i| {
                let l = l2.clone();
                spindle::spawn(move || {
                    for _ in 0..(4 - i) {
                        spindle::yield_now();
                    }
                    spindle::sleep_until(deadline);
                    assert!(Instant::now() >= deadline);
                    push(&l, i.to_string());
                })
            })
            .collect();
        spindle::join_all(hs).into_iter().for_each(|r| r.unwrap());
    });
    assert_eq!(*l.borrow(), ["4", "3", "2", "1", "0"]);
}

#[test]
fn sleep_never_ends_early() {
    spindle::run(|| {
        let hs: Vec<_> = (0..40u64)
            .map(|i| {
                spindle::spawn(move || {
                    let d = Duration::from_micros(i * 137 % 3000);
                    let start = Instant::now();
                    spindle::sleep(d);
                    let slept = start.elapsed();
                    assert!(slept >= d, "slept {slept:?} < {d:?}");
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(300),
        ] {
            let start = Instant::now();
            spindle::sleep(d);
            assert!(start.elapsed() >= d);
        }
    });
}

#[test]
fn join_of_a_panicked_fiber_gives_the_payload_and_others_are_unaffected() {
    spindle::run(|| {
        let ok1 = spindle::spawn(|| {
            spindle::yield_now();
            1
        });
        let bad = spindle::Builder::new()
            .name("bad".into())
            .spawn(|| -> i32 {
                spindle::yield_now();
                panic::panic_any(String::from("payload 42"))
            })
            .unwrap();
        let ok2 = spindle::spawn(|| {
            spindle::sleep(Duration::from_millis(2));
            2
        });
        match bad.join() {
            Err(JoinError::Panicked(p)) => assert_eq!(panic_message(&*p), "payload 42"),
            other => panic!("expected a panic, got {other:?}"),
        }
        assert_eq!(ok1.join().unwrap(), 1);
        assert_eq!(ok2.join().unwrap(), 2);
    });
}

#[test]
fn a_panic_in_the_main_fiber_reaches_block_on_after_the_others_unwind() {
    let flag = Rc::new(Cell::new(false));
    let f = flag.clone();
    let r = panic::catch_unwind(AssertUnwindSafe(move || {
        spindle::run(move || {
            let guard = DropFlag(f);
            spindle::spawn(move || {
                let _guard = guard;
                spindle::sleep(Duration::from_secs(3600));
            });
            spindle::yield_now();
            panic!("main failed");
        })
    }));
    assert_eq!(panic_message(&*r.unwrap_err()), "main failed");
    assert!(flag.get(), "the sleeping fiber was not unwound");
}

#[test]
fn cancel_while_sleeping() {
    spindle::run(|| {
        let dropped = Rc::new(Cell::new(false));
        let after = Rc::new(Cell::new(false));
        let (d, a) = (dropped.clone(), after.clone());
        let h = spindle::spawn(move || {
            let _g = DropFlag(d);
            spindle::sleep(Duration::from_secs(3600));
            a.set(true);
        });
        spindle::yield_now();
        assert_eq!(spindle::tasks()[1].state(), TaskState::Sleeping);
        let start = Instant::now();
        h.cancel();
        assert!(h.join().unwrap_err().is_cancelled());
        assert!(start.elapsed() < Duration::from_secs(60));
        assert!(dropped.get(), "destructor did not run");
        assert!(!after.get(), "code after the sleep ran");
        assert_eq!(spindle::tasks().len(), 1);
    });
}

#[test]
fn cancel_while_joining() {
    spindle::run(|| {
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let sleeper = spindle::spawn(|| {
            spindle::sleep(Duration::from_millis(30));
            "slept"
        });
        let sleeper_id = sleeper.id();
        let joiner = spindle::spawn(move || {
            let _g = DropFlag(d);
            sleeper.join()
        });
        spindle::yield_now();
        let states: Vec<_> = spindle::tasks()
            .iter()
            .map(|t| (t.id(), t.state()))
            .collect();
        assert!(
            states.contains(&(joiner.id(), TaskState::WaitingJoin)),
            "{states:?}"
        );
        joiner.cancel();
        assert!(joiner.join().unwrap_err().is_cancelled());
        assert!(dropped.get());
        // The joined fiber is unaffected (and its handle went away with the
        // joiner, so it runs on detached).
        assert!(spindle::tasks().iter().any(|t| t.id() == sleeper_id));
    });
}

#[test]
fn cancel_while_waiting_on_a_pipe() {
    spindle::run(|| {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let fd = a.as_raw_fd();
        let h = spindle::spawn(move || {
            let _g = DropFlag(d);
            wait_readable(fd, None)
        });
        spindle::yield_now();
        assert_eq!(spindle::tasks()[1].state(), TaskState::WaitingIo);
        h.cancel();
        assert!(h.join().unwrap_err().is_cancelled());
        assert!(dropped.get());
        // The registration is gone: a new wait on the same fd works.
        let w = spindle::spawn(move || {
            let mut b = b;
            b.write_all(b"x").unwrap();
        });
        wait_readable(fd, None).unwrap();
        let mut buf = [0u8; 1];
        a.read_exact(&mut buf).unwrap();
        w.join().unwrap();
    });
}

#[test]
fn cancel_before_start_after_finish_and_of_self() {
    spindle::run(|| {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let h = spindle::spawn(move || r.set(true));
        h.cancel();
        assert!(h.join().unwrap_err().is_cancelled());
        assert!(
            !ran.get(),
            "a fiber cancelled before it started must not run"
        );

        let done = spindle::spawn(|| 5);
        spindle::yield_now();
        assert!(done.is_finished());
        done.cancel();
        assert_eq!(done.join().unwrap(), 5);

        let me = Rc::new(RefCell::new(None::<JoinHandle<()>>));
        let m = me.clone();
        let reached = Rc::new(Cell::new(false));
        let r = reached.clone();
        let h = spindle::spawn(move || {
            m.borrow().as_ref().unwrap().cancel();
            r.set(true); // no suspension point yet: still running
            spindle::yield_now();
            unreachable!("cancelled at the yield");
        });
        *me.borrow_mut() = Some(h);
        spindle::yield_now();
        assert!(reached.get());
        let h = me.borrow_mut().take().unwrap();
        assert!(h.join().unwrap_err().is_cancelled());
    });
}

#[test]
fn a_fiber_may_catch_its_cancellation_and_clean_up_with_waits() {
    spindle::run(|| {
        let h = spindle::spawn(|| {
            let r = panic::catch_unwind(|| spindle::sleep(Duration::from_secs(3600)));
            assert!(r.is_err());
            // Suspension points work again after the cancel was delivered.
            spindle::sleep(Duration::from_millis(1));
            "cleaned up"
        });
        spindle::yield_now();
        h.cancel();
        assert_eq!(h.join().unwrap(), "cleaned up");
    });
}

#[test]
fn timeout_cancels_and_returns_elapsed() {
    spindle::run(|| {
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let start = Instant::now();
        let r = spindle::timeout(Duration::from_millis(20), move || {
            let _g = DropFlag(d);
            spindle::sleep(Duration::from_secs(3600));
        });
        let took = start.elapsed();
        let e = r.unwrap_err();
        assert_eq!(e.duration(), Duration::from_millis(20));
        assert!(took >= Duration::from_millis(20), "{took:?}");
        assert!(took < Duration::from_secs(60));
        assert!(dropped.get(), "the timed-out fiber was not unwound");
        assert_eq!(spindle::tasks().len(), 1);

        assert_eq!(spindle::timeout(Duration::from_secs(60), || 7), Ok(7));
        let quick = spindle::timeout(Duration::from_secs(60), || {
            spindle::sleep(Duration::from_millis(1));
            "in time"
        });
        assert_eq!(quick, Ok("in time"));
        let p =
            panic::catch_unwind(|| spindle::timeout(Duration::from_secs(1), || panic!("inner")));
        assert_eq!(panic_message(&*p.unwrap_err()), "inner");
    });
}

#[test]
fn join_all_keeps_order_and_per_fiber_results() {
    spindle::run(|| {
        let hs: Vec<JoinHandle<u32>> = (0..6u32)
            .map(|i| {
                spindle::spawn(move || {
                    // Later fibers finish first.
                    spindle::sleep(Duration::from_millis(u64::from(6 - i) * 2));
                    if i == 2 {
                        panic!("fiber 2 fails");
                    }
                    i * 10
                })
            })
            .collect();
        hs[4].cancel();
        let results = spindle::join_all(hs);
        assert_eq!(results.len(), 6);
        for (i, r) in results.iter().enumerate() {
            match i {
                2 => assert!(r.as_ref().unwrap_err().is_panic()),
                4 => assert!(r.as_ref().unwrap_err().is_cancelled()),
                _ => assert_eq!(*r.as_ref().unwrap(), i as u32 * 10),
            }
        }
    });
}

#[test]
fn wait_any_returns_the_first_to_finish() {
    spindle::run(|| {
        let mk = |ms: u64| {
            spindle::spawn(move || {
                spindle::sleep(Duration::from_millis(ms));
                ms
            })
        };
        let hs = vec![mk(40), mk(5), mk(20)];
        let (i, r, rest) = spindle::wait_any(hs);
        assert_eq!((i, r.unwrap()), (1, 5));
        let (i, r, rest) = spindle::wait_any(rest);
        assert_eq!((i, r.unwrap()), (1, 20));
        let (i, r, rest) = spindle::wait_any(rest);
        assert_eq!((i, r.unwrap(), rest.len()), (0, 40, 0));

        // Several finished already: the earliest finisher wins.
        let a = spindle::spawn(|| {
            spindle::yield_now();
            "second"
        });
        let b = spindle::spawn(|| "first");
        spindle::sleep(Duration::from_millis(1));
        let (i, r, _) = spindle::wait_any(vec![a, b]);
        assert_eq!((i, r.unwrap()), (1, "first"));
    });
}

#[test]
fn deadlock_is_reported_with_the_waiting_fibers() {
    let r = panic::catch_unwind(|| {
        spindle::run(|| {
            let stuck = spindle::Builder::new()
                .name("stuck".into())
                .spawn(|| {
                    // Nothing will ever unpark it.
                    spindle::park();
                })
                .unwrap();
            let napper = spindle::spawn(|| spindle::sleep(Duration::from_millis(5)));
            napper.join().unwrap(); // timers pending: not a deadlock yet
            stuck.join().unwrap();
            unreachable!("the runtime should have reported a deadlock");
        })
    });
    let msg = panic_message(&*r.unwrap_err());
    assert!(
        msg.starts_with("all fibers are asleep - deadlock!\n"),
        "{msg}"
    );
    assert!(msg.contains("\"main\" [waiting on a join: fiber "), "{msg}");
    assert!(msg.contains("\"stuck\" [parked]"), "{msg}");
}

#[test]
fn park_and_unpark() {
    spindle::run(|| {
        let parker = spindle::spawn(|| {
            spindle::park();
            "unparked"
        });
        spindle::yield_now();
        let t = spindle::tasks()
            .into_iter()
            .find(|t| t.id() == parker.id())
            .unwrap();
        assert_eq!(t.state(), TaskState::Parked);
        t.unpark();
        assert_eq!(parker.join().unwrap(), "unparked");
        // An unpark before the park makes the park return at once.
        spindle::current().unpark();
        spindle::park();
    });
}

#[test]
fn joining_oneself_panics() {
    spindle::run(|| {
        let own: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let msg = Rc::new(RefCell::new(String::new()));
        let (o, m) = (own.clone(), msg.clone());
        let h = spindle::spawn(move || {
            let me = o.borrow_mut().take().unwrap();
            let r = panic::catch_unwind(AssertUnwindSafe(|| me.join()));
            *m.borrow_mut() = panic_message(&*r.unwrap_err());
        });
        *own.borrow_mut() = Some(h);
        while own.borrow().is_some() || msg.borrow().is_empty() {
            spindle::yield_now();
        }
        assert!(
            msg.borrow().contains("a fiber cannot join itself"),
            "{}",
            msg.borrow()
        );
    });
}

#[test]
fn calls_outside_a_runtime_panic_with_a_message_saying_so() {
    for (what, f) in [
        (
            "spindle::Builder::spawn",
            Box::new(|| drop(spindle::spawn(|| ()))) as Box<dyn Fn()>,
        ),
        (
            "spindle::sleep_until",
            Box::new(|| spindle::sleep(Duration::from_millis(1))),
        ),
        ("spindle::yield_now", Box::new(spindle::yield_now)),
        ("spindle::current", Box::new(|| drop(spindle::current()))),
    ] {
        let msg = panic_message(&*panic::catch_unwind(AssertUnwindSafe(f)).unwrap_err());
        assert!(
            msg.contains(what) && msg.contains("outside a spindle runtime"),
            "{msg}"
        );
    }
    let msg =
        panic_message(&*panic::catch_unwind(|| spindle::run(|| spindle::run(|| ()))).unwrap_err());
    assert!(msg.contains("within a runtime"), "{msg}");
}

#[test]
fn tasks_lists_live_fibers_with_names_and_states() {
    spindle::run(|| {
        let sleeper = spindle::Builder::new()
            .name("sleeper".into())
            .spawn(|| spindle::sleep(Duration::from_millis(20)))
            .unwrap();
        let ready = spindle::spawn(|| ());
        let listed: Vec<_> = spindle::tasks()
            .iter()
            .map(|t| (t.name().map(String::from), t.state()))
            .collect();
        assert_eq!(
            listed,
            [
                (Some("main".to_string()), TaskState::Running),
                (Some("sleeper".to_string()), TaskState::Ready),
                (None, TaskState::Ready),
            ]
        );
        spindle::yield_now();
        let states: Vec<_> = spindle::tasks().iter().map(|t| t.state()).collect();
        assert_eq!(states, [TaskState::Running, TaskState::Sleeping]);
        sleeper.join().unwrap();
        ready.join().unwrap();
        assert_eq!(spindle::tasks().len(), 1);
    });
}

#[test]
fn ten_thousand_fibers_spawn_sleep_and_join() {
    const N: u64 = 10_000;
    let rt = Runtime::builder().stack_size(32 * 1024).build().unwrap();
    let start = Instant::now();
    let sum = rt.block_on(|| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                spindle::spawn(move || {
                    let t = Instant::now();
                    spindle::sleep(Duration::from_millis(50));
                    assert!(t.elapsed() >= Duration::from_millis(50));
                    i
                })
            })
            .collect();
        assert_eq!(spindle::tasks().len() as u64, N + 1);
        spindle::join_all(handles)
            .into_iter()
            .map(Result::unwrap)
            .sum::<u64>()
    });
    assert_eq!(sum, N * (N - 1) / 2);
    assert!(start.elapsed() >= Duration::from_millis(50));
    let stats = rt.stats();
    assert_eq!(stats.spawned, N + 1);
    assert_eq!(stats.finished, N + 1);
}
