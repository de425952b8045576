//! Unbounded channels: close semantics, `try_recv` and `recv_timeout`, the iterators, wake-ups, and that every message is dropped exactly once.

use super::*;

/// `send` hands the value back in a `SendError` once the receiver is
/// gone, on both kinds of sender (`try_send` and `send_timeout` say
/// `Disconnected`), and a sender parked on a full channel gets its
/// value back when the receiver goes.
#[test]
fn send_fails_with_the_value_back_once_the_receiver_is_gone() {
    spindle::run(|| {
        let (tx, rx) = channel::<String>();
        tx.send("before".into()).unwrap();
        drop(rx);
        assert_eq!(tx.send("after".into()), Err(SendError("after".to_string())));

        let (tx, rx) = sync_channel::<String>(2);
        drop(rx);
        assert_eq!(tx.send("b".into()), Err(SendError("b".to_string())));
        assert_eq!(
            tx.try_send("t".into()),
            Err(TrySendError::Disconnected("t".to_string()))
        );
        assert_eq!(
            tx.send_timeout("s".into(), Duration::from_secs(30)),
            Err(TrySendError::Disconnected("s".to_string()))
        );

        let (tx, rx) = sync_channel::<String>(1);
        tx.send("fills it".into()).unwrap();
        let parked = spindle::spawn(move || tx.send("parked".into()));
        settle();
        assert_waiting_sync(&parked);
        drop(rx);
        assert_eq!(parked.join().unwrap(), Err(SendError("parked".to_string())));
    });
}

/// `recv` keeps returning the messages already sent after the senders
/// go, and fails with `RecvError` only once the channel is empty and
/// every sender (clones included) is gone; it stays failed.
#[test]
fn recv_drains_then_fails_once_every_sender_is_gone() {
    spindle::run(|| {
        let (tx, rx) = channel();
        let tx2 = tx.clone();
        let tx3 = tx2.clone();
        tx.send(1).unwrap();
        tx2.send(2).unwrap();
        tx3.send(3).unwrap();
        drop(tx);
        drop(tx2);
        assert_eq!(rx.recv(), Ok(1));
        drop(tx3);
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Ok(3));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.recv(), Err(RecvError));

        let (tx, rx) = sync_channel(4);
        let tx2 = tx.clone();
        tx.send(10).unwrap();
        tx2.send(20).unwrap();
        drop(tx);
        drop(tx2);
        assert_eq!(rx.recv(), Ok(10));
        assert_eq!(rx.recv(), Ok(20));
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// `try_recv` says `Empty` while some sender (even only a clone) lives,
/// and `Disconnected` once none does and the channel is drained.
#[test]
fn try_recv_tells_empty_from_disconnected() {
    spindle::run(|| {
        let (tx, rx) = channel();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx.send(1).unwrap();
        let tx2 = tx.clone();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx2.send(2).unwrap();
        drop(tx2);
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// `recv_timeout` waits at least its timeout and says `Timeout` while a
/// sender lives; returns a message that comes during the wait; and says
/// `Disconnected` (without waiting out the deadline) when the last
/// sender goes during the wait, or went before it.
#[test]
fn recv_timeout_tells_timeout_from_disconnected() {
    spindle::run(|| {
        let (tx, rx) = channel::<u32>();
        let start = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(start.elapsed() >= Duration::from_millis(20));

        let tx2 = tx.clone();
        let sender = spindle::spawn(move || {
            spindle::sleep(Duration::from_millis(1));
            tx2.send(5).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(5));
        sender.join().unwrap();

        let dropper = spindle::spawn(move || {
            spindle::sleep(Duration::from_millis(1));
            drop(tx);
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(30)),
            Err(RecvTimeoutError::Disconnected)
        );
        dropper.join().unwrap();
        assert_eq!(
            rx.recv_deadline(Instant::now() + Duration::from_secs(30)),
            Err(RecvTimeoutError::Disconnected)
        );
    });
}

/// `try_iter` yields what is there now and ends without waiting; `iter`
/// waits for more and ends once every sender is gone; `into_iter` (a
/// `for` loop over the receiver) does the same by value. Each sender's
/// messages arrive in its order.
#[test]
fn iterators_end_when_the_senders_are_gone() {
    spindle::run(|| {
        let (tx, rx) = channel();
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(
            rx.try_iter().count(),
            0,
            "senders live, but nothing is there"
        );

        let tx2 = tx.clone();
        let a = spindle::spawn(move || {
            for i in 10..13 {
                tx.send(i).unwrap();
                spindle::yield_now();
            }
        });
        let b = spindle::spawn(move || {
            for i in 20..23 {
                tx2.send(i).unwrap();
                spindle::yield_now();
            }
        });
        let got: Vec<i32> = rx.iter().collect();
        let from = |lo: i32| got.iter().copied().filter(move |&v| v / 10 == lo / 10);
        assert_eq!(from(10).collect::<Vec<_>>(), [10, 11, 12], "{got:?}");
        assert_eq!(from(20).collect::<Vec<_>>(), [20, 21, 22], "{got:?}");
        assert_eq!(got.len(), 6);
        a.join().unwrap();
        b.join().unwrap();

        let (tx, rx) = sync_channel(1);
        let producer = spindle::spawn(move || {
            for i in 0..5 {
                tx.send(i).unwrap();
            }
        });
        let mut got = Vec::new();
        for v in rx {
            got.push(v);
        }
        assert_eq!(got, [0, 1, 2, 3, 4]);
        producer.join().unwrap();
    });
}

/// A receiver parked in `recv` stays parked while any sender lives and
/// is woken with `RecvError` by the last one's drop, on both kinds of
/// channel.
#[test]
fn a_parked_receiver_is_woken_by_the_last_senders_drop() {
    spindle::run(|| {
        let (tx, rx) = channel::<u32>();
        let tx2 = tx.clone();
        let r = spindle::spawn(move || rx.recv());
        settle();
        assert_waiting_sync(&r);
        drop(tx);
        settle();
        assert_waiting_sync(&r);
        drop(tx2);
        settle();
        assert!(
            r.is_finished(),
            "the last sender's drop did not wake the receiver"
        );
        assert_eq!(r.join().unwrap(), Err(RecvError));

        let (tx, rx) = sync_channel::<u32>(0);
        let r = spindle::spawn(move || rx.recv());
        settle();
        assert_waiting_sync(&r);
        drop(tx);
        settle();
        assert!(
            r.is_finished(),
            "the last sender's drop did not wake the receiver"
        );
        assert_eq!(r.join().unwrap(), Err(RecvError));
    });
}

/// Every message is dropped exactly once: one received, by its
/// receiver; one refused by `send`, by whoever got it back (not by the
/// channel); and those still in the channel when the receiver goes, by
/// the channel, whether it drops them with the receiver (as std does)
/// or with the last sender. On an unbounded channel, and on a bounded
/// one with a parked sender.
#[test]
fn messages_left_in_a_channel_are_dropped_exactly_once() {
    let drops = Rc::new(Cell::new(0));
    let d = Rc::clone(&drops);
    spindle::run(move || {
        let (tx, rx) = channel();
        for i in 0..5 {
            tx.send(Counted::new(i, &d)).unwrap();
        }
        let first = rx.recv().unwrap();
        assert_eq!(first.id, 0);
        drop(first);
        assert_eq!(d.get(), 1);
        drop(rx);
        let before = d.get();
        assert!(before == 1 || before == 5, "{before} drops");
        let back = tx.send(Counted::new(99, &d)).unwrap_err().0;
        assert_eq!(back.id, 99);
        assert_eq!(
            d.get(),
            before,
            "a refused message is handed back, not dropped"
        );
        drop(back);
        drop(tx);
        assert_eq!(
            d.get(),
            6,
            "the 4 messages left were not dropped exactly once"
        );

        d.set(0);
        let (tx, rx) = sync_channel(2);
        tx.send(Counted::new(0, &d)).unwrap();
        tx.send(Counted::new(1, &d)).unwrap();
        let tx2 = tx.clone();
        let d2 = Rc::clone(&d);
        let parked = spindle::spawn(move || {
            let back = tx2.send(Counted::new(2, &d2)).unwrap_err().0;
            let (id, before) = (back.id, d2.get());
            drop(back);
            (id, d2.get() - before)
        });
        settle();
        assert_waiting_sync(&parked);
        drop(rx);
        assert_eq!(
            parked.join().unwrap(),
            (2, 1),
            "the parked send gets its message back, and only its drop drops it"
        );
        drop(tx);
        assert_eq!(d.get(), 3, "each of the 3 messages dropped once");
    });
    assert_eq!(drops.get(), 3);
}
