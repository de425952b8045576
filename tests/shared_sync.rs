//! `spindle::sync::shared` across threads: `sync_channel` (rendezvous
//! included), `Mutex`, `Semaphore` and `WaitGroup` between fibers of two
//! workers and plain threads; FIFO order of mixed waiters; a fiber
//! cancelled after it was handed a lock, permits, room or a message passes
//! it on; poisoning; timeouts.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use spindle::sync::shared::{
    self, Mutex, RecvTimeoutError, Semaphore, TryRecvError, TrySendError, WaitGroup,
};
use spindle::Runtime;

fn runtime(n: usize) -> Runtime {
    Runtime::builder().workers(n).build().expect("runtime")
}

/// The number of waiters a primitive's `Debug` output reports.
fn waiters(debug: String) -> usize {
    let at = debug.find("waiters: ").expect("Debug shows waiters") + "waiters: ".len();
    let digits: String = debug[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a count")
}

/// Sleeps the calling fiber until `f` holds.
fn wait_until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < common::LONG, "never happened: {what}");
        spindle::sleep(Duration::from_millis(1));
    }
}

#[test]
fn mutex_contention_from_two_workers_and_a_thread_loses_no_update() {
    let _w = common::watchdog("mutex_contention");
    const ROUNDS: usize = 2_000;
    let rt = runtime(2);
    rt.block_on(|| {
        let count = Arc::new(Mutex::new(0usize));
        // A read-modify-write with a yield in the middle: any two holders
        // at once would lose an update.
        let bump = |count: &Mutex<usize>, i: usize, in_fiber: bool| {
            let mut g = count.lock().unwrap();
            let seen = *g;
            if i % 7 == 0 {
                if in_fiber {
                    spindle::yield_now();
                } else {
                    thread::yield_now();
                }
            }
            *g = seen + 1;
        };
        let fibers: Vec<_> = (0..4)
            .map(|i| {
                let count = Arc::clone(&count);
                spindle::spawn_on(i % 2, move || {
                    (0..ROUNDS).for_each(|r| bump(&count, r, true))
                })
            })
            .collect();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let count = Arc::clone(&count);
                thread::spawn(move || (0..ROUNDS).for_each(|r| bump(&count, r, false)))
            })
            .collect();
        fibers.into_iter().for_each(|f| f.join().unwrap());
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*count.lock().unwrap(), 6 * ROUNDS);
        assert!(!count.is_locked());
    });
}

#[test]
fn semaphore_contention_from_two_workers_and_a_thread_loses_no_update_and_caps() {
    let _w = common::watchdog("semaphore_contention");
    const ROUNDS: usize = 1_000;
    let rt = runtime(2);
    rt.block_on(|| {
        // One permit as a lock around a load-then-store counter, and three
        // permits shared by requests of one and two, never over-granted.
        let lock = Arc::new(Semaphore::new(1));
        let pool = Arc::new(Semaphore::new(3));
        let counter = Arc::new(AtomicUsize::new(0));
        let (held, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let work = {
            let (lock, pool, counter) = (lock.clone(), pool.clone(), counter.clone());
            let (held, most) = (held.clone(), most.clone());
            move |r: usize, in_fiber: bool| {
                let pause = || {
                    if in_fiber {
                        spindle::yield_now()
                    } else {
                        thread::yield_now()
                    }
                };
                {
                    let _p = lock.acquire();
                    let seen = counter.load(SeqCst);
                    if r % 5 == 0 {
                        pause();
                    }
                    counter.store(seen + 1, SeqCst);
                }
                let n = 1 + r % 2;
                let _p = pool.acquire_many(n);
                most.fetch_max(held.fetch_add(n, SeqCst) + n, SeqCst);
                pause();
                held.fetch_sub(n, SeqCst);
            }
        };
        let fibers: Vec<_> = (0..4)
            .map(|i| {
                let work = work.clone();
                spindle::spawn_on(i % 2, move || (0..ROUNDS).for_each(|r| work(r, true)))
            })
            .collect();
        let thread = {
            let work = work.clone();
            thread::spawn(move || (0..ROUNDS).for_each(|r| work(r, false)))
        };
        fibers.into_iter().for_each(|f| f.join().unwrap());
        thread.join().unwrap();
        assert_eq!(counter.load(SeqCst), 5 * ROUNDS);
        assert!(
            most.load(SeqCst) <= 3,
            "over-granted: {}",
            most.load(SeqCst)
        );
        assert_eq!(lock.available_permits(), 1);
        assert_eq!(pool.available_permits(), 3);
    });
}

#[test]
fn sync_channel_between_a_plain_thread_and_fibers_both_ways() {
    let _w = common::watchdog("sync_channel_both_ways");
    const N: u32 = 2_000;
    let rt = runtime(2);
    for bound in [0, 1, 4] {
        rt.block_on(|| {
            // Thread -> fiber on worker 1 -> thread.
            let (to_fiber, rx) = shared::sync_channel::<u32>(bound);
            let (tx, from_fiber) = shared::sync_channel::<u32>(bound);
            let fiber = spindle::spawn_on(1, move || {
                for v in rx.iter() {
                    tx.send(v + 1).unwrap();
                }
            });
            let feeder = thread::spawn(move || (0..N).for_each(|v| to_fiber.send(v).unwrap()));
            let reader = thread::spawn(move || from_fiber.iter().collect::<Vec<u32>>());
            feeder.join().unwrap();
            fiber.join().unwrap();
            let got = reader.join().unwrap();
            assert_eq!(got, (1..=N).collect::<Vec<_>>(), "bound {bound}");

            // Two producer fibers (one per worker) into the main fiber:
            // every message once, each producer's in order.
            let (tx, rx) = shared::sync_channel::<(usize, u32)>(bound);
            let producers: Vec<_> = (0..2)
                .map(|w| {
                    let tx = tx.clone();
                    spindle::spawn_on(w, move || (0..N).for_each(|v| tx.send((w, v)).unwrap()))
                })
                .collect();
            drop(tx);
            let mut next = [0u32; 2];
            for (w, v) in rx.iter() {
                assert_eq!(v, next[w], "producer {w}, bound {bound}");
                next[w] += 1;
            }
            assert_eq!(next, [N, N]);
            producers.into_iter().for_each(|p| p.join().unwrap());
        });
    }
}

#[test]
fn a_rendezvous_send_returns_only_once_the_receiver_has_the_message() {
    let _w = common::watchdog("rendezvous");
    let rt = runtime(2);
    rt.block_on(|| {
        let delay = Duration::from_millis(50);
        // Fiber sends, thread receives late.
        let (tx, rx) = shared::sync_channel::<u32>(0);
        let receiver = thread::spawn(move || {
            thread::sleep(delay);
            rx.recv().unwrap()
        });
        let start = Instant::now();
        tx.send(5).unwrap();
        assert!(
            start.elapsed() >= delay,
            "returned before the receiver came"
        );
        assert_eq!(receiver.join().unwrap(), 5);
        // The receiver is gone: the next send fails and gives it back.
        assert_eq!(tx.send(6).unwrap_err().0, 6);

        // Thread sends, fiber on worker 1 receives late.
        let (tx, rx) = shared::sync_channel::<u32>(0);
        let receiver = spindle::spawn_on(1, move || {
            spindle::sleep(delay);
            rx.recv().unwrap()
        });
        let sender = thread::spawn(move || {
            // Nobody waits yet: try_send reports the channel full.
            assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
            let start = Instant::now();
            tx.send(7).unwrap();
            start.elapsed()
        });
        assert_eq!(receiver.join().unwrap(), 7);
        assert!(sender.join().unwrap() >= delay / 2);
    });
}

#[test]
fn waiters_are_served_in_fifo_order_fibers_and_threads_alike() {
    let _w = common::watchdog("fifo");
    let rt = runtime(2);
    rt.block_on(|| {
        let m = Arc::new(Mutex::new(Vec::new()));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = m.lock().unwrap();
        let mut fibers = Vec::new();
        let mut threads = Vec::new();
        for i in 0..6usize {
            let (m2, order) = (Arc::clone(&m), Arc::clone(&order));
            let take = move || {
                m2.lock().unwrap().push(i);
                order.lock().unwrap().push(i);
            };
            if i % 3 == 2 {
                threads.push(thread::spawn(take));
            } else {
                fibers.push(spindle::spawn_on(i % 2, take));
            }
            wait_until("the waiter queued", || waiters(format!("{m:?}")) == i + 1);
        }
        drop(held);
        fibers.into_iter().for_each(|f| f.join().unwrap());
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*m.lock().unwrap(), (0..6).collect::<Vec<_>>());

        // A semaphore serves a large request at the front before small
        // ones behind it, and then the small ones in order.
        let sem = Arc::new(Semaphore::new(0));
        let mut all = Vec::new();
        for (i, n) in [3usize, 1, 1].into_iter().enumerate() {
            let sem2 = Arc::clone(&sem);
            all.push(spindle::spawn_on(i % 2, move || {
                sem2.acquire_many(n).forget()
            }));
            wait_until("the waiter queued", || waiters(format!("{sem:?}")) == i + 1);
        }
        sem.add_permits(2); // not enough for the first: nobody goes
        assert_eq!(waiters(format!("{sem:?}")), 3);
        assert_eq!(sem.available_permits(), 2);
        sem.add_permits(1);
        wait_until("the first is served", || all[0].is_finished());
        for (i, h) in all.iter().enumerate().skip(1) {
            assert_eq!(waiters(format!("{sem:?}")), 3 - i);
            assert!(!h.is_finished());
            sem.add_permits(1);
            wait_until("the next is served", || h.is_finished());
        }
        all.into_iter().for_each(|f| f.join().unwrap());
        assert_eq!(sem.available_permits(), 0);
    });
}

/// Runs `driver` on worker 1, where it can hand something to a local
/// fiber and cancel that fiber before it runs.
fn on_worker_1(driver: impl FnOnce() + Send + 'static) {
    let rt = runtime(2);
    rt.block_on(|| spindle::spawn_on(1, driver).join().unwrap());
}

#[test]
fn a_fiber_handed_the_lock_then_cancelled_passes_it_on() {
    let _w = common::watchdog("cancel_lock");
    on_worker_1(|| {
        let m = Arc::new(Mutex::new(0));
        let g = m.lock().unwrap();
        let m2 = Arc::clone(&m);
        let first = spindle::spawn(move || *m2.lock().unwrap() += 100);
        wait_until("first queued", || waiters(format!("{m:?}")) == 1);
        let m3 = Arc::clone(&m);
        let second = thread::spawn(move || *m3.lock().unwrap() += 1);
        wait_until("second queued", || waiters(format!("{m:?}")) == 2);
        drop(g); // hands the lock to `first`, which has not run yet
        first.cancel();
        assert!(first.join().unwrap_err().is_cancelled());
        second.join().unwrap();
        assert_eq!(*m.lock().unwrap(), 1);
        assert!(!m.is_poisoned(), "a cancellation does not poison");
    });
}

#[test]
fn a_fiber_granted_permits_then_cancelled_passes_them_on() {
    let _w = common::watchdog("cancel_permits");
    on_worker_1(|| {
        let sem = Arc::new(Semaphore::new(0));
        let s2 = Arc::clone(&sem);
        let first = spindle::spawn(move || s2.acquire_many(2).forget());
        wait_until("first queued", || waiters(format!("{sem:?}")) == 1);
        let s3 = Arc::clone(&sem);
        let second = thread::spawn(move || s3.acquire().forget());
        wait_until("second queued", || waiters(format!("{sem:?}")) == 2);
        sem.add_permits(2); // both to `first`, which has not run yet
        first.cancel();
        assert!(first.join().unwrap_err().is_cancelled());
        second.join().unwrap();
        assert_eq!(sem.available_permits(), 1, "no permit lost");

        // A front waiter that leaves without a grant lets the next go.
        let s4 = Arc::clone(&sem);
        let big = spindle::spawn(move || s4.acquire_many(5).forget());
        wait_until("big queued", || waiters(format!("{sem:?}")) == 1);
        let s5 = Arc::clone(&sem);
        let small = spindle::spawn_on(0, move || s5.acquire().forget());
        wait_until("small queued", || waiters(format!("{sem:?}")) == 2);
        big.cancel();
        assert!(big.join().unwrap_err().is_cancelled());
        small.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
    });
}

#[test]
fn a_sender_given_room_then_cancelled_passes_it_on() {
    let _w = common::watchdog("cancel_send");
    on_worker_1(|| {
        let (tx, rx) = shared::sync_channel::<u32>(1);
        tx.send(0).unwrap();
        let tx1 = tx.clone();
        let first = spindle::spawn(move || tx1.send(1).unwrap());
        let waiting = Arc::new(AtomicBool::new(false));
        let (tx2, w2) = (tx.clone(), Arc::clone(&waiting));
        let second = thread::spawn(move || {
            w2.store(true, SeqCst);
            tx2.send(2).unwrap()
        });
        spindle::yield_now(); // `first` parks
        wait_until("second started", || waiting.load(SeqCst));
        thread::sleep(Duration::from_millis(20)); // and queued behind
        assert_eq!(rx.recv(), Ok(0)); // room for `first`, which has not run yet
        first.cancel();
        assert!(first.join().unwrap_err().is_cancelled());
        second.join().unwrap();
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    });
}

#[test]
fn a_cancelled_rendezvous_sender_takes_its_message_back() {
    let _w = common::watchdog("cancel_rendezvous");
    on_worker_1(|| {
        let (tx, rx) = shared::sync_channel::<u32>(0);
        let tx1 = tx.clone();
        let sender = spindle::spawn(move || tx1.send(1).unwrap());
        spindle::yield_now(); // it pushed its message and parked
        sender.cancel();
        assert!(sender.join().unwrap_err().is_cancelled());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        // The channel still works.
        let t = thread::spawn(move || tx.send(2).unwrap());
        assert_eq!(rx.recv(), Ok(2));
        t.join().unwrap();
    });
}

#[test]
fn a_receiver_told_of_a_message_then_cancelled_leaves_it_there() {
    let _w = common::watchdog("cancel_recv");
    on_worker_1(|| {
        let (tx, rx) = shared::channel::<u32>();
        // The receiver behind a shared mutex, which the cancelled fiber's
        // unwind unlocks without poisoning it.
        let rx = Arc::new(Mutex::new(rx));
        let r2 = Arc::clone(&rx);
        let receiver = spindle::spawn(move || r2.lock().unwrap().recv());
        spindle::yield_now(); // it parks in recv
        tx.send(3).unwrap(); // tells it, but it has not run yet
        receiver.cancel();
        assert!(receiver.join().unwrap_err().is_cancelled());
        let rx = rx.lock().expect("not poisoned by a cancellation");
        assert_eq!(rx.try_recv(), Ok(3), "the message stayed in the channel");
        // A plain thread's send wakes the next recv.
        let t = thread::spawn(move || tx.send(4).unwrap());
        assert_eq!(rx.recv(), Ok(4));
        t.join().unwrap();
    });
}

#[test]
fn a_waitgroup_waiter_cancelled_takes_nothing_from_the_others() {
    let _w = common::watchdog("cancel_wait");
    on_worker_1(|| {
        let wg = WaitGroup::new();
        wg.add(1);
        let w1 = wg.clone();
        let cancelled = spindle::spawn(move || w1.wait());
        let w2 = wg.clone();
        let thread = thread::spawn(move || w2.wait());
        wait_until("both wait", || waiters(format!("{wg:?}")) == 2);
        wg.done();
        cancelled.cancel();
        assert!(cancelled.join().unwrap_err().is_cancelled());
        thread.join().unwrap();
        assert_eq!(waiters(format!("{wg:?}")), 0);
    });
}

#[test]
fn a_panic_poisons_and_a_cancellation_does_not() {
    let _w = common::watchdog("poison");
    let rt = runtime(2);
    rt.block_on(|| {
        // A plain thread panics holding the lock.
        let m = Arc::new(Mutex::new(1));
        let m2 = Arc::clone(&m);
        assert!(thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("boom in a thread");
        })
        .join()
        .is_err());
        assert!(m.is_poisoned());
        let g = m.lock().unwrap_err().into_inner();
        assert_eq!(*g, 1, "the lock is held all the same");
        drop(g);
        assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
        m.clear_poison();
        assert!(m.lock().is_ok());

        // A fiber on another worker panics holding it.
        let m2 = Arc::clone(&m);
        let h = spindle::spawn_on(1, move || {
            let _g = m2.lock().unwrap();
            panic!("boom in a fiber");
        });
        assert!(h.join().unwrap_err().is_panic());
        assert!(m.is_poisoned());
        m.clear_poison();

        // A fiber cancelled while it holds it (asleep inside) does not.
        let m2 = Arc::clone(&m);
        let h = spindle::spawn_on(1, move || {
            let _g = m2.lock().unwrap();
            spindle::sleep(Duration::from_secs(3600));
        });
        wait_until("the sleeper holds the lock", || m.is_locked());
        h.cancel();
        assert!(h.join().unwrap_err().is_cancelled());
        assert!(!m.is_poisoned());
        assert!(!m.is_locked());
        let m = Arc::try_unwrap(m).unwrap();
        assert_eq!(m.into_inner().unwrap(), 1);
    });
}

#[test]
fn timeouts_on_fibers_and_threads() {
    let _w = common::watchdog("timeouts");
    let rt = runtime(2);
    rt.block_on(|| {
        let t = Duration::from_millis(30);
        // recv_timeout in a fiber: times out, then gets a late message.
        let (tx, rx) = shared::channel::<u32>();
        let start = Instant::now();
        assert_eq!(rx.recv_timeout(t), Err(RecvTimeoutError::Timeout));
        common::assert_waited_about(start.elapsed(), t);
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            tx.send(1).unwrap();
        });
        assert_eq!(rx.recv_timeout(common::LONG), Ok(1));
        sender.join().unwrap();
        assert_eq!(
            rx.recv_timeout(t),
            Err(RecvTimeoutError::Disconnected),
            "the sender is gone"
        );

        // send_timeout on a full channel, from a fiber and from a thread.
        let (tx, rx) = shared::sync_channel::<u32>(1);
        tx.send(0).unwrap();
        let start = Instant::now();
        assert_eq!(tx.send_timeout(1, t), Err(TrySendError::Full(1)));
        common::assert_waited_about(start.elapsed(), t);
        let tx2 = tx.clone();
        let waited = thread::spawn(move || {
            let start = Instant::now();
            assert_eq!(tx2.send_timeout(2, t), Err(TrySendError::Full(2)));
            start.elapsed()
        })
        .join()
        .unwrap();
        common::assert_waited_about(waited, t);
        // The timed-out senders left the queue: room goes to the next one.
        assert_eq!(rx.recv(), Ok(0));
        assert_eq!(tx.send_timeout(3, t), Ok(()));
        assert_eq!(rx.recv(), Ok(3));

        // A rendezvous nobody comes to: the message is taken back.
        let (tx, rx) = shared::sync_channel::<u32>(0);
        let start = Instant::now();
        assert_eq!(tx.send_timeout(4, t), Err(TrySendError::Full(4)));
        common::assert_waited_about(start.elapsed(), t);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

        // A plain thread's recv_timeout, fed by a fiber on worker 1.
        let (tx, rx) = shared::channel::<u32>();
        let fiber = spindle::spawn_on(1, move || {
            spindle::sleep(Duration::from_millis(10));
            tx.send(5).unwrap();
        });
        let got = thread::spawn(move || {
            let first = rx.recv_timeout(Duration::from_millis(1));
            (first, rx.recv_timeout(common::LONG))
        })
        .join()
        .unwrap();
        assert_eq!(got, (Err(RecvTimeoutError::Timeout), Ok(5)));
        fiber.join().unwrap();
    });
}

#[test]
fn a_waitgroup_across_two_workers_and_a_plain_thread() {
    let _w = common::watchdog("wait_group");
    const N: usize = 40;
    let rt = runtime(2);
    rt.block_on(|| {
        let wg = WaitGroup::new();
        let finished = Arc::new(AtomicUsize::new(0));
        wg.add(N + 1);
        let workers: Vec<_> = (0..N)
            .map(|i| {
                let (wg, finished) = (wg.clone(), finished.clone());
                spindle::spawn_on(i % 2, move || {
                    spindle::sleep(Duration::from_millis((i % 5) as u64));
                    finished.fetch_add(1, SeqCst);
                    wg.done();
                })
            })
            .collect();
        // Waiters: a fiber on each worker and a plain thread; each must see
        // every piece of work finished.
        let fiber_waiters: Vec<_> = (0..2)
            .map(|w| {
                let (wg, finished) = (wg.clone(), finished.clone());
                spindle::spawn_on(w, move || {
                    wg.wait();
                    finished.load(SeqCst)
                })
            })
            .collect();
        let thread_waiter = {
            let (wg, finished) = (wg.clone(), finished.clone());
            thread::spawn(move || {
                wg.wait();
                finished.load(SeqCst)
            })
        };
        // The last piece is done by a plain thread.
        let last = {
            let (wg, finished) = (wg.clone(), finished.clone());
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(10));
                finished.fetch_add(1, SeqCst);
                wg.done();
            })
        };
        wg.wait();
        assert_eq!(finished.load(SeqCst), N + 1);
        for w in fiber_waiters {
            assert_eq!(w.join().unwrap(), N + 1);
        }
        assert_eq!(thread_waiter.join().unwrap(), N + 1);
        last.join().unwrap();
        workers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(wg.count(), 0);
    });
}

#[test]
fn cancels_amid_contention_lose_no_lock_and_no_permit() {
    let _w = common::watchdog("cancel_storm");
    let rt = runtime(2);
    rt.block_on(|| {
        let m = Arc::new(Mutex::new(0usize));
        let sem = Arc::new(Semaphore::new(2));
        let done = Arc::new(AtomicUsize::new(0));
        for round in 0..20usize {
            let fibers: Vec<_> = (0..8usize)
                .map(|i| {
                    let (m, sem, done) = (m.clone(), sem.clone(), done.clone());
                    spindle::spawn_on(i % 2, move || loop {
                        let _p = sem.acquire_many(1 + i % 2);
                        let mut g = m.lock().unwrap();
                        *g += 1;
                        done.fetch_add(1, SeqCst);
                        drop(g);
                        spindle::yield_now();
                    })
                })
                .collect();
            // A plain thread contends too, and stops on its own.
            let (m2, sem2, done2) = (m.clone(), sem.clone(), done.clone());
            let thread = thread::spawn(move || {
                for _ in 0..50 {
                    let _p = sem2.acquire();
                    *m2.lock().unwrap() += 1;
                    done2.fetch_add(1, SeqCst);
                }
            });
            spindle::sleep(Duration::from_millis(1 + round as u64 % 3));
            for f in &fibers {
                f.cancel();
            }
            for f in fibers {
                assert!(f.join().unwrap_err().is_cancelled());
            }
            thread.join().unwrap();
            assert!(!m.is_locked(), "round {round}: the lock was lost");
            assert_eq!(
                sem.available_permits(),
                2,
                "round {round}: a permit was lost"
            );
            assert_eq!(*m.lock().unwrap(), done.load(SeqCst), "round {round}");
        }
        assert!(!m.is_poisoned());
    });
}
