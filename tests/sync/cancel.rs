//! A fiber cancelled while it waits on each primitive unwinds cleanly and leaves the primitive consistent: no lost message, permit, lock, notification or barrier arrival.

use super::*;

/// A fiber cancelled in `recv` ends as cancelled with its destructors
/// run, and takes no message with it: the next message goes to the next
/// receiver in line. One that was told of a message but cancelled before
/// it ran passes the message on to the next receiver.
#[test]
fn in_recv() {
    spindle::run(|| {
        let (tx, rx) = channel::<u32>();
        let rx = Rc::new(rx);
        let r = Rc::clone(&rx);
        let (first, flag) = spawn_guarded(move || r.recv());
        let r = Rc::clone(&rx);
        let next = spindle::spawn(move || r.recv());
        settle();
        assert_waiting_sync(&next);
        cancel_blocked(first, &flag);
        tx.send(1).unwrap();
        settle();
        assert!(
            next.is_finished(),
            "the message did not reach the next receiver"
        );
        assert_eq!(next.join().unwrap(), Ok(1));

        let r = Rc::clone(&rx);
        let (told, flag) = spawn_guarded(move || r.recv());
        let r = Rc::clone(&rx);
        let next = spindle::spawn(move || r.recv());
        settle();
        assert_waiting_sync(&told);
        assert_waiting_sync(&next);
        tx.send(2).unwrap(); // tells `told`, which has not run yet
        told.cancel();
        assert_cancelled(told);
        assert!(flag.get());
        settle();
        assert!(next.is_finished(), "the notification was not passed on");
        assert_eq!(next.join().unwrap(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    });
}

/// `spindle::timeout` around a `recv` cancels it cleanly: `Elapsed`,
/// and the channel then delivers to the next receiver.
#[test]
fn in_recv_by_timeout() {
    spindle::run(|| {
        let (tx, rx) = channel::<u32>();
        let rx = Rc::new(rx);
        let r = Rc::clone(&rx);
        let start = Instant::now();
        let e = spindle::timeout(Duration::from_millis(5), move || r.recv()).unwrap_err();
        assert_eq!(e.duration(), Duration::from_millis(5));
        assert!(start.elapsed() >= Duration::from_millis(5));
        tx.send(3).unwrap();
        assert_eq!(rx.recv(), Ok(3));
    });
}

/// A fiber cancelled in `SyncSender::send` on a full channel ends as
/// cancelled with its destructors run; its message is dropped (once)
/// and never received, and the channel's room is intact. One that was
/// told of room but cancelled before it ran passes the room on to the
/// next queued sender.
#[test]
fn in_send_on_a_full_channel() {
    spindle::run(|| {
        let drops = Rc::new(Cell::new(0));
        let (tx, rx) = sync_channel(1);
        tx.send(Counted::new(0, &drops)).unwrap();
        let (t, d) = (tx.clone(), drops.clone());
        let (sender, flag) = spawn_guarded(move || t.send(Counted::new(1, &d)).is_ok());
        settle();
        cancel_blocked(sender, &flag);
        assert_eq!(
            drops.get(),
            1,
            "the cancelled send's message is dropped, once"
        );
        assert_eq!(rx.recv().map(|c| c.id), Ok(0));
        assert_eq!(rx.try_recv().map(|c| c.id), Err(TryRecvError::Empty));
        assert_eq!(drops.get(), 2);

        tx.try_send(Counted::new(2, &drops)).expect("room for one");
        let spawn_sender = |id| {
            let (t, d) = (tx.clone(), drops.clone());
            spindle::spawn(move || t.send(Counted::new(id, &d)).is_ok())
        };
        let told = spawn_sender(3);
        let next = spawn_sender(4);
        settle();
        assert_waiting_sync(&told);
        assert_waiting_sync(&next);
        assert_eq!(rx.recv().map(|c| c.id), Ok(2)); // room: tells `told`
        told.cancel();
        settle();
        assert!(
            next.is_finished(),
            "the room was not passed on to the next sender"
        );
        assert_cancelled(told);
        assert!(next.join().unwrap());
        assert_eq!(rx.recv().map(|c| c.id), Ok(4));
        assert_eq!(rx.try_recv().map(|c| c.id), Err(TryRecvError::Empty));
        assert_eq!(drops.get(), 5, "0 to 4, each dropped once");
    });
}

/// A fiber cancelled in a rendezvous `send` (its message offered, not
/// yet taken) ends as cancelled with its destructors run; its message is
/// taken back and dropped once, never received; the next rendezvous goes
/// through.
#[test]
fn in_rendezvous_send() {
    spindle::run(|| {
        let drops = Rc::new(Cell::new(0));
        let (tx, rx) = sync_channel(0);
        let (t, d) = (tx.clone(), drops.clone());
        let (sender, flag) = spawn_guarded(move || t.send(Counted::new(1, &d)).is_ok());
        settle();
        cancel_blocked(sender, &flag);
        assert_eq!(
            drops.get(),
            1,
            "the offered message is taken back and dropped once"
        );
        assert_eq!(
            rx.try_recv().map(|c| c.id),
            Err(TryRecvError::Empty),
            "a cancelled rendezvous sender's message was received"
        );

        let d = drops.clone();
        let sender = spindle::spawn(move || tx.send(Counted::new(2, &d)).is_ok());
        assert_eq!(rx.recv().map(|c| c.id), Ok(2));
        assert!(sender.join().unwrap());
        assert_eq!(drops.get(), 2);
        assert_eq!(rx.recv().map(|c| c.id), Err(RecvError));
    });
}

/// A rendezvous sender whose offer a parked receiver has been told of,
/// cancelled before that receiver runs: the send reports nothing (the
/// fiber ends as cancelled), so its message must not be delivered
/// either (mpsc docs: "a message is never delivered by a send that
/// reported nothing"); the receiver waits on for the next one.
#[test]
fn in_rendezvous_send_with_a_receiver_waiting() {
    spindle::run(|| {
        let (tx, rx) = sync_channel::<u32>(0);
        let rx = Rc::new(rx);
        let r = Rc::clone(&rx);
        let receiver = spindle::spawn(move || r.recv());
        settle();
        assert_waiting_sync(&receiver);
        let t = tx.clone();
        let (sender, flag) = spawn_guarded(move || t.send(7));
        spindle::yield_now(); // it offers 7, tells the receiver, and parks
        cancel_blocked(sender, &flag);
        settle();
        if receiver.is_finished() {
            panic!(
                "the cancelled rendezvous sender's message was received: {:?}",
                receiver.join().unwrap()
            );
        }
        let sender = spindle::spawn(move || tx.send(8));
        assert_eq!(receiver.join().unwrap(), Ok(8));
        assert_eq!(sender.join().unwrap(), Ok(()));
    });
}

/// A holds the lock (the main fiber), B and C queue for it; B is
/// cancelled; when A unlocks, C gets the lock.
#[test]
fn in_lock_before_the_handoff() {
    spindle::run(|| {
        let m = Rc::new(Mutex::new(Vec::new()));
        let a = m.lock();
        let m2 = Rc::clone(&m);
        let (b, flag) = spawn_guarded(move || m2.lock().push("B"));
        let m2 = Rc::clone(&m);
        let c = spindle::spawn(move || m2.lock().push("C"));
        settle();
        assert_waiting_sync(&c);
        cancel_blocked(b, &flag);
        drop(a);
        settle();
        assert!(c.is_finished(), "the lock did not reach C");
        c.join().unwrap();
        assert_eq!(*m.lock(), ["C"]);
        assert!(!m.is_locked());
    });
}

/// A holds the lock (the main fiber), B and C queue for it; A unlocks,
/// which hands the lock to B, and B is cancelled before it runs: B
/// passes the lock on to C, and once C is done the lock is free.
#[test]
fn in_lock_after_the_handoff() {
    spindle::run(|| {
        let m = Rc::new(Mutex::new(Vec::new()));
        let a = m.lock();
        let m2 = Rc::clone(&m);
        let (b, flag) = spawn_guarded(move || m2.lock().push("B"));
        let m2 = Rc::clone(&m);
        let c = spindle::spawn(move || m2.lock().push("C"));
        settle();
        assert_waiting_sync(&b);
        assert_waiting_sync(&c);
        drop(a); // handed to B, which has not run yet
        b.cancel();
        assert_cancelled(b);
        assert!(flag.get());
        settle();
        assert!(
            c.is_finished(),
            "the lock handed to B was not passed on to C"
        );
        c.join().unwrap();
        assert_eq!(*m.lock(), ["C"]);
        assert!(m.try_lock().is_some(), "the lock is free again");
    });
}

/// A fiber cancelled in `Condvar::wait` ends as cancelled with its
/// destructors run and without the lock, and does not swallow a later
/// notification. One notified but cancelled before it ran passes the
/// notification on to the next waiter.
#[test]
fn in_condvar_wait() {
    spindle::run(|| {
        let st = Rc::new((Mutex::new(Vec::new()), Condvar::new()));
        let waiter = |name: &'static str| {
            let st = Rc::clone(&st);
            spawn_guarded(move || {
                let (m, cv) = &*st;
                cv.wait(m.lock()).push(name);
            })
        };
        let (m, cv) = &*st;

        let (w1, flag) = waiter("w1");
        let (w2, _) = waiter("w2");
        settle();
        assert_waiting_sync(&w2);
        cancel_blocked(w1, &flag);
        assert!(
            m.try_lock().is_some(),
            "the cancelled waiter left without the lock"
        );
        cv.notify_one();
        settle();
        assert!(
            w2.is_finished(),
            "the notification went to the cancelled waiter"
        );
        w2.join().unwrap();

        let (w3, flag) = waiter("w3");
        let (w4, _) = waiter("w4");
        settle();
        assert_waiting_sync(&w3);
        assert_waiting_sync(&w4);
        cv.notify_one(); // tells w3, which has not run yet
        w3.cancel();
        assert_cancelled(w3);
        assert!(flag.get());
        settle();
        assert!(w4.is_finished(), "the notification was not passed on");
        w4.join().unwrap();
        assert_eq!(*m.lock(), ["w2", "w4"]);
    });
}

/// std's pattern notifies while holding the lock, so the notified
/// waiter wakes and queues for the mutex. If it is cancelled there,
/// before `wait` returns, the notification it took must go to the next
/// waiter (as asyncio's `Condition.wait` does since CPython gh-112202);
/// otherwise that waiter sleeps through a change it was meant to see.
#[test]
fn in_condvar_wait_while_taking_the_lock_back() {
    spindle::run(|| {
        let st = Rc::new((Mutex::new(0u32), Condvar::new()));
        let waiter = |name: &'static str| {
            let st = Rc::clone(&st);
            spawn_guarded(move || {
                let (m, cv) = &*st;
                let g = cv.wait(m.lock());
                (name, *g)
            })
        };
        let (m, cv) = &*st;
        let (w1, flag) = waiter("w1");
        let (w2, _) = waiter("w2");
        settle();
        let mut g = m.lock();
        *g = 1;
        cv.notify_one();
        settle(); // w1 leaves the condvar's queue and queues for the mutex
        assert_waiting_sync(&w1);
        cancel_blocked(w1, &flag);
        drop(g);
        settle();
        assert!(
            w2.is_finished(),
            "w1 took the notification and was cancelled; w2 still waits"
        );
        assert_eq!(w2.join().unwrap(), ("w2", 1));
    });
}

/// A fiber cancelled in `acquire` ends as cancelled with its destructors
/// run and takes no permit: released permits are all there for the next
/// fiber. Permits granted to a waiter cancelled before it ran go to the
/// next waiter, or back to the count if there is none.
#[test]
fn in_acquire() {
    spindle::run(|| {
        let sem = Rc::new(Semaphore::new(1));
        let acquirer = |name: &'static str, l: &Log| {
            let (s, l) = (Rc::clone(&sem), Rc::clone(l));
            spawn_guarded(move || {
                let _p = s.acquire();
                push(&l, name);
            })
        };
        let l = log();

        let held = sem.acquire();
        let (w1, flag) = acquirer("w1", &l);
        settle();
        cancel_blocked(w1, &flag);
        assert_eq!(sem.available_permits(), 0);
        drop(held);
        assert_eq!(sem.available_permits(), 1, "the released permit is there");
        let (other, _) = acquirer("other", &l);
        other.join().unwrap();
        assert_eq!(sem.available_permits(), 1);

        let held = sem.acquire();
        let (w2, flag) = acquirer("w2", &l);
        let (w3, _) = acquirer("w3", &l);
        settle();
        assert_waiting_sync(&w2);
        assert_waiting_sync(&w3);
        drop(held); // granted to w2, which has not run yet
        assert_eq!(sem.available_permits(), 0);
        w2.cancel();
        assert_cancelled(w2);
        assert!(flag.get());
        settle();
        assert!(
            w3.is_finished(),
            "the permit granted to w2 was not passed on"
        );
        w3.join().unwrap();
        assert_eq!(sem.available_permits(), 1);

        let held = sem.acquire();
        let (w4, _) = acquirer("w4", &l);
        settle();
        drop(held); // granted to w4
        w4.cancel();
        assert_cancelled(w4);
        assert_eq!(sem.available_permits(), 1, "the granted permit came back");
        assert_eq!(*l.borrow(), ["other", "w3"]);
    });
}

/// A request at the front of the queue that cannot be met (2 permits
/// wanted, 1 free) holds up a smaller one behind it, as FIFO says; when
/// it is cancelled, the one behind must be served from the free permit
/// instead of waiting for some unrelated release.
#[test]
fn in_acquire_at_the_front_serves_the_waiters_behind() {
    spindle::run(|| {
        let sem = Rc::new(Semaphore::new(1));
        let s = Rc::clone(&sem);
        let (big, flag) = spawn_guarded(move || drop(s.acquire_many(2)));
        let s = Rc::clone(&sem);
        let small = spindle::spawn(move || s.acquire().forget());
        settle();
        assert_waiting_sync(&small);
        assert_eq!(sem.available_permits(), 1);
        cancel_blocked(big, &flag);
        settle();
        assert!(
            small.is_finished(),
            "the waiter behind the cancelled one still waits, with {} permit(s) free",
            sem.available_permits()
        );
        small.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
    });
}

/// A fiber cancelled in `WaitGroup::wait` ends as cancelled with its
/// destructors run and leaves the count alone; the other waiters are
/// released at zero as before.
#[test]
fn in_wait_group_wait() {
    spindle::run(|| {
        let wg = WaitGroup::new();
        wg.add(1);
        let w = wg.clone();
        let (cancelled, flag) = spawn_guarded(move || w.wait());
        let w = wg.clone();
        let other = spindle::spawn(move || w.wait());
        settle();
        assert_waiting_sync(&other);
        cancel_blocked(cancelled, &flag);
        assert_eq!(wg.count(), 1);
        settle();
        assert_waiting_sync(&other);
        wg.done();
        settle();
        assert!(other.is_finished());
        other.join().unwrap();
    });
}

/// A fiber cancelled in `Barrier::wait` withdraws its arrival: the
/// barrier still needs `n` live arrivals (two live ones of three do not
/// release it), the third live arrival is the leader, and the next
/// generation works as usual.
#[test]
fn in_barrier_wait() {
    spindle::run(|| {
        let barrier = Rc::new(Barrier::new(3));
        let arrive = || {
            let b = Rc::clone(&barrier);
            spawn_guarded(move || b.wait().is_leader())
        };
        let (a, flag) = arrive();
        let (b, _) = arrive();
        settle();
        cancel_blocked(a, &flag);
        let (c, _) = arrive();
        settle();
        assert_waiting_sync(&b);
        assert_waiting_sync(&c);
        assert!(barrier.wait().is_leader(), "the third live arrival leads");
        settle();
        assert!(b.is_finished() && c.is_finished());
        assert!(!b.join().unwrap());
        assert!(!c.join().unwrap());

        let next: Vec<_> = (0..3).map(|_| arrive().0).collect();
        let leaders = spindle::join_all(next)
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(leaders, 1);
    });
}

/// Cancelling a fiber blocked on a channel while some other fiber is
/// parked in the middle of unwinding (a cancelled fiber whose destructor
/// waits) is not lost. Rust's "panicking" flag is per thread, so the
/// runtime cannot tell the two fibers apart while the other one is
/// parked; it delivers the cancel as soon as that unwind is over
/// (runtime docs, "Cancellation and shutdown"), with nothing else
/// waking the cancelled fiber.
#[test]
fn in_recv_while_another_fiber_is_unwinding() {
    spindle::run(|| {
        let (gate_tx, unwinding) = park_a_fiber_mid_unwind();

        let (tx, rx) = channel::<u32>();
        let (blocked, flag) = spawn_guarded(move || rx.recv());
        settle();
        assert_waiting_sync(&blocked);
        blocked.cancel();
        settle();
        drop(gate_tx); // the other unwind can finish now
        assert_cancelled(unwinding);
        settle();
        assert!(
            blocked.is_finished(),
            "the cancel was lost: the fiber blocked in recv never unwound"
        );
        assert_cancelled(blocked);
        assert!(flag.get());
        drop(tx);
    });
}
