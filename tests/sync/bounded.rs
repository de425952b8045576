//! Bounded and rendezvous channels: back-pressure, `try_send`, `send_timeout`, and the rendezvous hand-over.

use super::*;

/// With `sync_channel(n)`, a producer of 100 messages is never more
/// than `n` ahead of a slow consumer, and is exactly `n` ahead at times
/// (it fills the buffer, then parks): back-pressure, with nothing lost
/// or reordered.
#[test]
fn a_producer_never_gets_more_than_the_bound_ahead() {
    for bound in [1usize, 3, 8] {
        spindle::run(move || {
            let (tx, rx) = sync_channel(bound);
            let sent = Rc::new(Cell::new(0usize));
            let received = Rc::new(Cell::new(0usize));
            let most_ahead = Rc::new(Cell::new(0usize));
            let (s, r, m) = (sent.clone(), received.clone(), most_ahead.clone());
            let producer = spindle::spawn(move || {
                for i in 0..100 {
                    tx.send(i).unwrap();
                    s.set(s.get() + 1);
                    m.set(m.get().max(s.get() - r.get()));
                }
            });
            let mut got = Vec::new();
            for v in rx.iter() {
                received.set(received.get() + 1);
                got.push(v);
                spindle::yield_now(); // a slow consumer
            }
            producer.join().unwrap();
            assert_eq!(got, (0..100).collect::<Vec<_>>());
            assert_eq!(most_ahead.get(), bound, "bound {bound}");
        });
    }
}

/// A sender on a full channel parks (`TaskState::WaitingSync`) and goes
/// on once a `recv` makes room.
#[test]
fn a_sender_on_a_full_channel_parks() {
    spindle::run(|| {
        let (tx, rx) = sync_channel(2);
        let done = Rc::new(Cell::new(0));
        let d = done.clone();
        let producer = spindle::spawn(move || {
            for i in 0..3 {
                tx.send(i).unwrap();
                d.set(i + 1);
            }
        });
        settle();
        assert_eq!(done.get(), 2);
        assert_waiting_sync(&producer);
        assert_eq!(rx.recv(), Ok(0));
        settle();
        assert_eq!(done.get(), 3);
        assert!(producer.is_finished());
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    });
}

/// `try_send` never waits: `Full` (value back) when there is no room,
/// or, on a rendezvous channel, no receiver waiting; `Disconnected`
/// (value back) once the receiver is gone.
#[test]
fn try_send_reports_full_and_disconnected() {
    spindle::run(|| {
        let (tx, rx) = sync_channel(1);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(tx.try_send(3), Ok(()));
        drop(rx);
        assert_eq!(tx.try_send(4), Err(TrySendError::Disconnected(4)));

        let (tx, rx) = sync_channel(0);
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
        let receiver = spindle::spawn(move || rx.recv());
        settle();
        assert_waiting_sync(&receiver);
        assert_eq!(tx.try_send(2), Ok(()), "a receiver is waiting");
        assert_eq!(receiver.join().unwrap(), Ok(2));
        assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
    });
}

/// `send_timeout` on a full channel waits at least its timeout and
/// gives the value back as `Full`; succeeds if room is made in time; and
/// gives it back as `Disconnected` if the receiver goes during the wait.
#[test]
fn send_timeout_waits_for_room_at_most_the_timeout() {
    spindle::run(|| {
        let (tx, rx) = sync_channel(1);
        tx.send(0).unwrap();
        let start = Instant::now();
        assert_eq!(
            tx.send_timeout(1, Duration::from_millis(20)),
            Err(TrySendError::Full(1))
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(
            tx.send_timeout(1, Duration::ZERO),
            Err(TrySendError::Full(1))
        );

        let rx = Rc::new(rx);
        let rx2 = Rc::clone(&rx);
        let consumer = spindle::spawn(move || {
            spindle::sleep(Duration::from_millis(1));
            rx2.recv()
        });
        assert_eq!(tx.send_timeout(2, Duration::from_secs(30)), Ok(()));
        assert_eq!(consumer.join().unwrap(), Ok(0));
        assert_eq!(rx.try_recv(), Ok(2));

        tx.send(3).unwrap();
        let rx = Rc::try_unwrap(rx).expect("the consumer has finished");
        let dropper = spindle::spawn(move || {
            spindle::sleep(Duration::from_millis(1));
            drop(rx);
        });
        assert_eq!(
            tx.send_timeout(4, Duration::from_secs(30)),
            Err(TrySendError::Disconnected(4))
        );
        dropper.join().unwrap();
    });
}

/// On `sync_channel(0)` each `send` returns only after the receiver has
/// taken its message: until then the sender is parked, and when it
/// goes on, the receiver has already recorded the take.
#[test]
fn rendezvous_send_returns_only_after_the_receiver_took_the_message() {
    spindle::run(|| {
        let (tx, rx) = sync_channel(0);
        let taken = Rc::new(Cell::new(0u32));
        let seen = Rc::new(RefCell::new(Vec::new()));
        let (t, s) = (taken.clone(), seen.clone());
        let producer = spindle::spawn(move || {
            for i in 0..3 {
                tx.send(i).unwrap();
                s.borrow_mut().push(t.get());
            }
        });
        for i in 0..3 {
            settle();
            assert_waiting_sync(&producer);
            assert_eq!(
                seen.borrow().len(),
                i as usize,
                "a send returned before its take"
            );
            assert_eq!(rx.recv(), Ok(i));
            taken.set(i + 1);
        }
        producer.join().unwrap();
        assert_eq!(*seen.borrow(), [1, 2, 3]);
    });
}

/// A rendezvous sender whose receiver is dropped while it waits gets
/// `SendError` with its value back; so does one whose receiver was gone
/// already.
#[test]
fn rendezvous_sender_gets_its_value_back_when_the_receiver_drops() {
    spindle::run(|| {
        let (tx, rx) = sync_channel::<String>(0);
        let tx2 = tx.clone();
        let producer = spindle::spawn(move || tx2.send("hello".to_string()));
        settle();
        assert_waiting_sync(&producer);
        drop(rx);
        assert_eq!(
            producer.join().unwrap(),
            Err(SendError("hello".to_string()))
        );
        assert_eq!(tx.send("late".into()), Err(SendError("late".to_string())));
    });
}
