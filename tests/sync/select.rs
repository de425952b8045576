//! `select!` and `Select`: the first ready operation wins, fairness among
//! ready ones over 10,000 rounds, bounded and rendezvous sends, defaults
//! and timeouts, disconnection, and a select cancelled or woken while it
//! waits on several queues leaves every channel consistent (no message or
//! wake-up lost).

use super::*;
use spindle::sync::{Select, SyncSender};

/// A select parks until one of its channels has a message, takes that
/// message, and runs the matching body.
#[test]
fn recv_parks_until_one_channel_has_a_message() {
    spindle::run(|| {
        let (tx1, rx1) = channel::<u32>();
        let (tx2, rx2) = channel::<&str>();
        let selecting = spindle::spawn(move || {
            spindle::select! {
                recv(rx1) -> m => format!("one {}", m.unwrap()),
                recv(rx2) -> m => format!("two {}", m.unwrap()),
            }
        });
        settle();
        assert_waiting_sync(&selecting);
        tx2.send("b").unwrap();
        assert_eq!(selecting.join().unwrap(), "two b");
        drop(tx1);
    });
}

/// Each of three always-ready channels is chosen about a third of the
/// time over 10,000 selects (uniform among the ready: expected 3,333,
/// standard deviation 47; the bound is 6 deviations); with one of them
/// empty, the other two split about evenly.
#[test]
fn fair_among_ready_operations_over_10000_rounds() {
    spindle::run(|| {
        const ROUNDS: usize = 10_000;
        let chans: Vec<_> = (0..3).map(|_| channel::<usize>()).collect();
        for (tx, _) in &chans {
            for i in 0..ROUNDS {
                tx.send(i).unwrap();
            }
        }
        let mut picks = [0usize; 3];
        for _ in 0..ROUNDS {
            spindle::select! {
                recv(chans[0].1) -> m => { m.unwrap(); picks[0] += 1 }
                recv(chans[1].1) -> m => { m.unwrap(); picks[1] += 1 }
                recv(chans[2].1) -> m => { m.unwrap(); picks[2] += 1 }
            }
        }
        for p in picks {
            assert!((3333 - 300..=3333 + 300).contains(&p), "unfair: {picks:?}");
        }
        // Channel 1 empty: 0 and 2 split (expected 5,000, deviation 50).
        while chans[1].1.try_recv().is_ok() {}
        let mut picks = [0usize; 3];
        for _ in 0..ROUNDS / 2 {
            spindle::select! {
                recv(chans[0].1) -> _ => picks[0] += 1,
                recv(chans[1].1) -> _ => picks[1] += 1,
                recv(chans[2].1) -> _ => picks[2] += 1,
            }
        }
        assert_eq!(picks[1], 0);
        for p in [picks[0], picks[2]] {
            assert!((2500 - 300..=2500 + 300).contains(&p), "unfair: {picks:?}");
        }
    });
}

/// Fairness also holds for a select that waits: a producer sends on two
/// channels, one after the other, then yields; the consumer, parked on
/// both, wakes to find both ready, and which one it takes first is even
/// over the 5,000 wake-ups of 10,000 rounds (expected 2,500, deviation 35;
/// the bound is 8 deviations), not always the one that woke it.
#[test]
fn fair_when_woken_over_10000_rounds() {
    spindle::run(|| {
        const ROUNDS: usize = 10_000;
        let (tx_a, rx_a) = channel::<()>();
        let (tx_b, rx_b) = channel::<()>();
        let producer = spindle::spawn(move || {
            for _ in 0..ROUNDS / 2 {
                tx_a.send(()).unwrap();
                tx_b.send(()).unwrap();
                spindle::yield_now();
            }
        });
        let (mut a, mut b) = (0usize, 0usize);
        let (mut wakes, mut a_after_wake) = (0usize, 0usize);
        for _ in 0..ROUNDS {
            let parks = rx_a.is_empty_for_test() && rx_b.is_empty_for_test();
            let took_a = spindle::select! {
                recv(rx_a) -> m => { m.unwrap(); true }
                recv(rx_b) -> m => { m.unwrap(); false }
            };
            a += took_a as usize;
            b += !took_a as usize;
            if parks {
                wakes += 1;
                a_after_wake += took_a as usize;
            }
        }
        producer.join().unwrap();
        assert_eq!((a, b), (ROUNDS / 2, ROUNDS / 2), "every message once");
        assert_eq!(wakes, ROUNDS / 2, "the consumer parked once per pair");
        assert!(
            (2500 - 280..=2500 + 280).contains(&a_after_wake),
            "after a wake-up `a` was taken first {a_after_wake} times of {wakes}"
        );
    });
}

trait EmptyForTest {
    fn is_empty_for_test(&self) -> bool;
}

impl<T> EmptyForTest for Receiver<T> {
    fn is_empty_for_test(&self) -> bool {
        let mut sel = Select::new();
        sel.recv(self);
        let ready = sel.try_select();
        // Dropping it uncompleted leaves the message where it is.
        ready.is_err()
    }
}

/// A send on a full bounded channel waits for room; a send on a
/// rendezvous channel goes ahead only with a receiver waiting, and then
/// hands the message to that receiver.
#[test]
fn send_on_bounded_and_rendezvous_channels() {
    spindle::run(|| {
        let (tx, rx) = sync_channel(1);
        tx.send(0).unwrap();
        let t = tx.clone();
        let sender = spindle::spawn(move || {
            spindle::select! {
                send(t, 1) -> r => r.is_ok(),
            }
        });
        settle();
        assert_waiting_sync(&sender);
        assert_eq!(rx.recv(), Ok(0)); // room: wakes the select
        assert!(sender.join().unwrap());
        assert_eq!(rx.try_recv(), Ok(1));

        let (tx, rx) = sync_channel::<u32>(0);
        let not_sent = spindle::select! {
            send(tx, 5) -> _ => false,
            default => true,
        };
        assert!(not_sent, "a rendezvous send went ahead with no receiver");
        let rx = Rc::new(rx);
        let r = Rc::clone(&rx);
        let receiver = spindle::spawn(move || r.recv());
        settle();
        spindle::select! {
            send(tx, 6) -> res => res.unwrap(),
            default => panic!("a receiver waits: the send should go ahead"),
        }
        assert_eq!(receiver.join().unwrap(), Ok(6));

        // A select that waits to send is woken when a receiver arrives.
        let t = tx.clone();
        let sender = spindle::spawn(move || {
            spindle::select! { send(t, 7) -> res => res.is_ok() }
        });
        settle();
        assert_waiting_sync(&sender);
        assert_eq!(rx.recv(), Ok(7));
        assert!(sender.join().unwrap());
        // A select receiving on a rendezvous channel takes a plain send's offer.
        let sender = spindle::spawn(move || tx.send(8));
        let got = spindle::select! { recv(rx) -> m => m };
        assert_eq!(got, Ok(8));
        assert_eq!(sender.join().unwrap(), Ok(()));
    });
}

/// `default` runs when nothing is ready; `default(timeout)` after at least
/// the timeout, unless a message comes first.
#[test]
fn default_and_timeout() {
    spindle::run(|| {
        let (tx, rx) = channel::<u32>();
        let v = spindle::select! {
            recv(rx) -> _ => 1,
            default => 2,
        };
        assert_eq!(v, 2);
        let start = Instant::now();
        let v = spindle::select! {
            recv(rx) -> _ => 1,
            default(Duration::from_millis(5)) => 2,
        };
        assert_eq!(v, 2);
        assert!(start.elapsed() >= Duration::from_millis(5));
        let t = tx.clone();
        spindle::spawn(move || {
            spindle::sleep(Duration::from_millis(1));
            t.send(9).unwrap();
        });
        let v = spindle::select! {
            recv(rx) -> m => m.unwrap(),
            default(Duration::from_secs(3600)) => 0,
        };
        assert_eq!(v, 9);
        tx.send(10).unwrap();
        assert_eq!(
            rx.recv(),
            Ok(10),
            "the timed-out select left the channel intact"
        );
    });
}

/// A disconnected channel is ready: `recv` gives `RecvError`, `send` the
/// value back.
#[test]
fn disconnected_channels_are_ready() {
    spindle::run(|| {
        let (tx, rx) = channel::<u32>();
        let (tx2, rx2) = sync_channel::<String>(0);
        drop(tx);
        drop(rx2);
        let (_keep, idle) = channel::<u32>();
        let r = spindle::select! {
            recv(rx) -> m => m,
            recv(idle) -> _ => unreachable!(),
        };
        assert_eq!(r, Err(RecvError));
        let r = spindle::select! {
            send(tx2, "back".to_string()) -> r => r,
            recv(idle) -> _ => unreachable!(),
        };
        assert_eq!(r, Err(SendError("back".to_string())));
    });
}

/// A select woken by one channel leaves the others' queues: later
/// messages on them go to the plain receivers behind it. And when two of
/// its channels both notify it before it runs, the notification of the
/// one it does not take is passed on, so the receiver behind it on that
/// channel is not left waiting with a message there (repeated: which
/// channel the select takes is random).
#[test]
fn a_woken_select_deregisters_and_passes_notifications_on() {
    spindle::run(|| {
        let mut passed_on = 0;
        for _ in 0..64 {
            let (tx1, rx1) = channel::<&str>();
            let (tx2, rx2) = channel::<&str>();
            let (rx1, rx2) = (Rc::new(rx1), Rc::new(rx2));
            let (r1, r2) = (Rc::clone(&rx1), Rc::clone(&rx2));
            let selecting = spindle::spawn(move || {
                spindle::select! {
                    recv(r1) -> m => ("rx1", m.unwrap()),
                    recv(r2) -> m => ("rx2", m.unwrap()),
                }
            });
            let r1 = Rc::clone(&rx1);
            let behind = spindle::spawn(move || r1.recv().unwrap());
            settle();
            assert_waiting_sync(&selecting);
            assert_waiting_sync(&behind);
            tx2.send("b").unwrap(); // notifies the select
            tx1.send("a").unwrap(); // notifies the select too (first in rx1's queue)
            settle();
            let got = selecting.join().unwrap();
            match got {
                ("rx2", "b") => {
                    assert!(behind.is_finished(), "rx1's notification was lost");
                    assert_eq!(behind.join().unwrap(), "a");
                    passed_on += 1;
                }
                ("rx1", "a") => {
                    assert_waiting_sync(&behind);
                    assert_eq!(rx2.try_recv(), Ok("b"));
                    tx1.send("c").unwrap();
                    assert_eq!(behind.join().unwrap(), "c");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(passed_on > 0, "the select never took rx2 in 64 tries");
    });
}

/// A fiber cancelled while its select waits unwinds with its destructors
/// run and has left every queue: a message then goes to the receiver
/// behind it. One cancelled after a message woke it but before it ran
/// passes the wake-up on: the receiver behind it gets the message.
#[test]
fn cancel_while_waiting() {
    spindle::run(|| {
        for told in [false, true] {
            let (tx1, rx1) = channel::<u32>();
            let (_tx2, rx2) = sync_channel::<u32>(0);
            let rx1 = Rc::new(rx1);
            let r1 = Rc::clone(&rx1);
            let (selecting, flag) = spawn_guarded(move || {
                spindle::select! {
                    recv(r1) -> m => m.ok(),
                    recv(rx2) -> m => m.ok(),
                }
            });
            let r1 = Rc::clone(&rx1);
            let behind = spindle::spawn(move || r1.recv());
            settle();
            assert_waiting_sync(&behind);
            if told {
                tx1.send(1).unwrap(); // wakes the select, which has not run
                selecting.cancel();
                assert_cancelled(selecting);
                assert!(flag.get());
            } else {
                cancel_blocked(selecting, &flag);
                tx1.send(1).unwrap();
            }
            settle();
            assert!(
                behind.is_finished(),
                "the message did not reach the next receiver"
            );
            assert_eq!(behind.join().unwrap(), Ok(1));
            assert_eq!(rx1.try_recv(), Err(TryRecvError::Empty));
        }
    });
}

/// A select waiting to send on a rendezvous channel, cancelled: nothing
/// was sent, the cancelled fiber's destructors ran, and the channel
/// works as before.
#[test]
fn cancel_a_waiting_rendezvous_send() {
    spindle::run(|| {
        let drops = Rc::new(Cell::new(0));
        let (tx, rx) = sync_channel::<Counted>(0);
        let (t, d) = (tx.clone(), drops.clone());
        let (selecting, flag) = spawn_guarded(move || {
            spindle::select! { send(t, Counted::new(1, &d)) -> r => r.is_ok() }
        });
        settle();
        cancel_blocked(selecting, &flag);
        assert_eq!(
            drops.get(),
            0,
            "the message was never made: it is made when chosen"
        );
        assert_eq!(rx.try_recv().map(|c| c.id), Err(TryRecvError::Empty));
        let sender =
            spindle::spawn(move || tx.send(Counted::new(2, &Rc::new(Cell::new(0)))).is_ok());
        assert_eq!(rx.recv().map(|c| c.id), Ok(2));
        assert!(sender.join().unwrap());
    });
}

/// `spindle::timeout` around a waiting select gives `Elapsed`, and the
/// channels are left intact.
#[test]
fn under_a_timeout() {
    spindle::run(|| {
        let (tx, rx) = channel::<u32>();
        let rx = Rc::new(rx);
        let r = Rc::clone(&rx);
        let e = spindle::timeout(Duration::from_millis(2), move || {
            spindle::select! { recv(r) -> m => m }
        });
        assert!(e.is_err());
        tx.send(4).unwrap();
        let r = Rc::clone(&rx);
        let next = spindle::spawn(move || r.recv());
        assert_eq!(next.join().unwrap(), Ok(4));
    });
}

/// `Select` with a number of operations known only at run time; an
/// operation chosen and then dropped uncompleted passes its wake-up on and
/// leaves the message in its channel.
#[test]
fn select_type_dynamic_and_dropped_uncompleted() {
    spindle::run(|| {
        let chans: Vec<(SyncSender<usize>, Receiver<usize>)> =
            (0..5).map(|_| sync_channel(1)).collect();
        chans[3].0.send(33).unwrap();
        let mut sel = Select::new();
        for (_, rx) in &chans {
            sel.recv(rx);
        }
        let oper = sel.select();
        assert_eq!(oper.index(), 3);
        assert_eq!(oper.recv(&chans[3].1), Ok(33));

        let (tx, rx) = channel::<u32>();
        let rx = Rc::new(rx);
        let r = Rc::clone(&rx);
        let selecting = spindle::spawn(move || {
            let mut sel = Select::new();
            sel.recv(&*r);
            let oper = sel.select();
            drop(oper); // told of a message, takes nothing
        });
        let r = Rc::clone(&rx);
        let behind = spindle::spawn(move || r.recv());
        settle();
        tx.send(5).unwrap();
        settle();
        selecting.join().unwrap();
        assert!(
            behind.is_finished(),
            "the dropped operation's wake-up was lost"
        );
        assert_eq!(behind.join().unwrap(), Ok(5));
    });
}

/// Completing with another channel end than the one selected panics.
#[test]
#[should_panic(expected = "not the channel end of the selected operation")]
fn completing_with_the_wrong_channel_panics() {
    let (tx, rx) = channel::<u32>();
    let (_tx2, rx2) = channel::<u32>();
    tx.send(1).unwrap();
    let mut sel = Select::new();
    sel.recv(&rx);
    let _ = sel.try_select().unwrap().recv(&rx2);
}
