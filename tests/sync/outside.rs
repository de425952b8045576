//! Calls made with no runtime: those that need not wait work, those that would wait panic with a clear message.

use super::*;

/// Calls that need not wait work with no runtime: sends with room,
/// receives with a message there (or no sender left), `try_*`, locking
/// a free mutex, free permits, a zero wait group, a barrier of one, and
/// notifications with nobody waiting.
#[test]
fn calls_that_need_not_wait_work_outside_a_runtime() {
    let (tx, rx) = channel();
    tx.send(1).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(2).unwrap();
    assert_eq!(rx.recv(), Ok(2));
    drop(tx);
    assert_eq!(rx.recv(), Err(RecvError));

    let (tx, rx) = sync_channel(1);
    tx.send(1).unwrap();
    assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(1));

    let m = Mutex::new(5);
    {
        let g = m.try_lock().expect("free");
        assert_eq!(*g, 5);
        assert!(m.try_lock().is_none());
    }
    *m.lock() += 1;
    assert_eq!(m.into_inner(), 6);

    let sem = Semaphore::new(1);
    let p = sem.try_acquire().expect("one free");
    assert!(sem.try_acquire().is_none());
    drop(p);
    drop(sem.acquire());
    sem.add_permits(1);
    assert_eq!(sem.available_permits(), 2);

    let wg = WaitGroup::new();
    wg.wait();
    wg.add(1);
    wg.done();
    wg.wait();

    assert!(Barrier::new(1).wait().is_leader());
    let cv = Condvar::new();
    cv.notify_one();
    cv.notify_all();

    let lock = RwLock::new(1);
    drop((lock.read(), lock.read()));
    *lock.write() += 1;
    assert_eq!(lock.into_inner(), 2);

    let ev = Event::new();
    ev.set();
    ev.wait();
    assert!(ev.wait_timeout(Duration::from_secs(1)));

    let cell = OnceCell::new();
    assert_eq!(*cell.get_or_init(|| 3), 3);

    let (tx, rx) = channel();
    tx.send(4).unwrap();
    let got = spindle::select! {
        recv(rx) -> m => m,
        default => Ok(0),
    };
    assert_eq!(got, Ok(4));
    let got = spindle::select! {
        recv(rx) -> m => m,
        default => Ok(0),
    };
    assert_eq!(got, Ok(0), "empty: the default runs");
}

/// Calls that would have to wait panic with no runtime, naming the call
/// and saying why, and leave the primitive as it was (a rendezvous
/// message offered is taken back, a condvar's lock is released).
#[test]
fn calls_that_must_wait_panic_outside_a_runtime() {
    #[track_caller]
    fn expect_panic(what: &str, f: impl FnOnce()) {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        let msg = panic_message(&*r.expect_err(what));
        assert!(
            msg.contains(what) && msg.contains("outside a spindle runtime"),
            "{what}: {msg}"
        );
    }
    let (_tx, rx) = channel::<u32>();
    expect_panic("spindle::sync::Receiver::recv", || {
        let _ = rx.recv();
    });
    expect_panic("spindle::sync::Receiver::recv", || {
        let _ = rx.recv_timeout(Duration::from_millis(1));
    });

    let (tx, rx) = sync_channel(1);
    tx.send(1).unwrap();
    expect_panic("spindle::sync::SyncSender::send", || {
        let _ = tx.send(2);
    });
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    let (tx, rx) = sync_channel(0);
    expect_panic("spindle::sync::SyncSender::send", || {
        let _ = tx.send(3);
    });
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "the offer was taken back"
    );

    let m = Mutex::new(());
    let g = m.lock();
    expect_panic("spindle::sync::Mutex::lock", || drop(m.lock()));
    drop(g);

    let cv = Condvar::new();
    expect_panic("spindle::sync::Condvar::wait", || drop(cv.wait(m.lock())));
    assert!(!m.is_locked(), "the lock given to wait was released");

    let sem = Semaphore::new(0);
    expect_panic("spindle::sync::Semaphore::acquire", || drop(sem.acquire()));
    assert_eq!(sem.available_permits(), 0);

    let wg = WaitGroup::new();
    wg.add(1);
    expect_panic("spindle::sync::WaitGroup::wait", || wg.wait());

    let barrier = Barrier::new(2);
    expect_panic("spindle::sync::Barrier::wait", || {
        let _ = barrier.wait();
    });

    let lock = RwLock::new(());
    let r = lock.read();
    expect_panic("spindle::sync::RwLock::write", || drop(lock.write()));
    drop(r);
    assert!(lock.try_write().is_some(), "the failed write left no trace");

    let ev = Event::new();
    expect_panic("spindle::sync::Event::wait", || ev.wait());

    let cell = OnceCell::new();
    expect_panic("spindle::sync::OnceCell::get_or_init", || {
        cell.get_or_init(|| *cell.get_or_init(|| 1));
    });
    assert_eq!(cell.get(), None, "the panicking initialiser left it empty");

    let (_tx, rx) = channel::<u32>();
    expect_panic("spindle::sync::Select::select", || {
        let _ = spindle::select! { recv(rx) -> m => m };
    });
}
