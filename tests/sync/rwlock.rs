//! `RwLock`: shared readers, an exclusive writer, write-preferring FIFO
//! grants (a writer is not starved by a stream of readers), cancellation
//! and timeouts while waiting.

use super::*;

/// Readers share the lock across suspension points; a writer waits for
/// all of them and then excludes everyone.
#[test]
fn readers_share_and_a_writer_excludes() {
    spindle::run(|| {
        let lock = Rc::new(RwLock::new(0u32));
        let release = Rc::new(Event::new());
        let inside = Rc::new(Cell::new(0usize));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (lock, release, inside) = (lock.clone(), release.clone(), inside.clone());
                spindle::spawn(move || {
                    let g = lock.read();
                    inside.set(inside.get() + 1);
                    release.wait(); // holds the read lock across a suspension
                    inside.set(inside.get() - 1);
                    *g
                })
            })
            .collect();
        settle();
        assert_eq!(lock.reader_count(), 3);
        assert_eq!(inside.get(), 3, "the three readers are inside together");
        let l = Rc::clone(&lock);
        let i = Rc::clone(&inside);
        let writer = spindle::spawn(move || {
            let mut g = l.write();
            assert_eq!(i.get(), 0, "the writer ran while readers were inside");
            assert_eq!(l.reader_count(), 0);
            *g = 7;
        });
        settle();
        assert_waiting_sync(&writer);
        release.set();
        for r in spindle::join_all(readers) {
            assert_eq!(r.unwrap(), 0);
        }
        writer.join().unwrap();
        assert_eq!(*lock.read(), 7);
        assert!(!lock.is_write_locked());
        assert_eq!(lock.reader_count(), 0);
    });
}

/// A reader that arrives while a writer waits queues behind the writer
/// (`try_read` refuses too); releasing grants in arrival order: the
/// writer alone, then every reader up to the next writer at once.
#[test]
fn grants_are_fifo_and_write_preferring() {
    spindle::run(|| {
        let lock = Rc::new(RwLock::new(()));
        let order = log();
        let held = lock.read();
        let spawn = |name: &'static str, write: bool| {
            let (lock, order) = (lock.clone(), order.clone());
            spindle::spawn(move || {
                if write {
                    let _g = lock.write();
                    push(&order, name);
                    spindle::yield_now();
                } else {
                    let _g = lock.read();
                    push(&order, name);
                    spindle::yield_now();
                }
            })
        };
        let w1 = spawn("w1", true);
        settle();
        assert_waiting_sync(&w1);
        assert!(
            lock.try_read().is_none(),
            "a reader overtook a waiting writer"
        );
        let r1 = spawn("r1", false);
        let r2 = spawn("r2", false);
        let w2 = spawn("w2", true);
        let r3 = spawn("r3", false);
        settle();
        for h in [&r1, &r2, &w2, &r3] {
            assert_waiting_sync(h);
        }
        drop(held);
        assert!(lock.is_write_locked(), "w1 was granted the lock");
        settle();
        assert_eq!(*order.borrow(), ["w1", "r1", "r2", "w2", "r3"]);
        for h in [w1, r1, r2, w2, r3] {
            h.join().unwrap();
        }
        assert!(lock.try_write().is_some());
    });
}

/// The readers queued behind a writer are granted together when it
/// releases, up to the next queued writer.
#[test]
fn a_release_grants_every_reader_up_to_the_next_writer() {
    spindle::run(|| {
        let lock = Rc::new(RwLock::new(0));
        let w = lock.write();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let l = Rc::clone(&lock);
                spindle::spawn(move || *l.read())
            })
            .collect();
        let l = Rc::clone(&lock);
        let writer = spindle::spawn(move || *l.write() += 1);
        settle();
        drop(w);
        assert_eq!(lock.reader_count(), 3, "all three readers granted at once");
        assert!(!lock.is_write_locked(), "the writer behind them waits");
        for r in spindle::join_all(readers) {
            assert_eq!(r.unwrap(), 0);
        }
        writer.join().unwrap();
        let lock = Rc::try_unwrap(lock).expect("no fiber holds it");
        assert_eq!(lock.into_inner(), 1);
    });
}

/// A stream of overlapping readers (one always holds the lock) does not
/// starve a writer: once it waits, no reader gets in before it, and the
/// readers carry on after it.
#[test]
fn a_writer_is_not_starved_by_a_stream_of_readers() {
    spindle::run(|| {
        let lock = Rc::new(RwLock::new(0u64));
        let reads = Rc::new(Cell::new(0u64));
        let stop = Rc::new(Cell::new(false));
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (lock, reads, stop) = (lock.clone(), reads.clone(), stop.clone());
                spindle::spawn(move || {
                    while !stop.get() {
                        let g = lock.read();
                        reads.set(reads.get() + 1);
                        spindle::yield_now(); // hold it across a suspension
                        drop(g);
                    }
                })
            })
            .collect();
        for _ in 0..50 {
            spindle::yield_now();
        }
        assert!(lock.reader_count() > 0, "the readers overlap");
        let (l, r) = (Rc::clone(&lock), Rc::clone(&reads));
        let writer = spindle::spawn(move || {
            let arrived = r.get();
            let mut g = l.write();
            *g += 1;
            (arrived, r.get())
        });
        // The writer queues as soon as it runs; readers keep arriving.
        for _ in 0..50 {
            spindle::yield_now();
        }
        assert!(writer.is_finished(), "the writer is starved by readers");
        let (arrived, at_write) = writer.join().unwrap();
        assert_eq!(
            at_write, arrived,
            "a reader that arrived after the writer got in before it"
        );
        let after = reads.get();
        for _ in 0..50 {
            spindle::yield_now();
        }
        assert!(reads.get() > after, "the readers go on after the writer");
        stop.set(true);
        for r in spindle::join_all(readers) {
            r.unwrap();
        }
        assert_eq!(*lock.read(), 1);
    });
}

/// A writer cancelled while queued behind a reader leaves, and the
/// readers queued behind it (held up only by it) get in at once.
#[test]
fn cancel_a_queued_writer_lets_the_readers_behind_it_in() {
    spindle::run(|| {
        let lock = Rc::new(RwLock::new(()));
        let held = lock.read();
        let l = Rc::clone(&lock);
        let (writer, flag) = spawn_guarded(move || drop(l.write()));
        settle();
        let l = Rc::clone(&lock);
        let reader = spindle::spawn(move || drop(l.read()));
        settle();
        assert_waiting_sync(&reader);
        cancel_blocked(writer, &flag);
        settle();
        assert!(
            reader.is_finished(),
            "the reader behind the cancelled writer still waits"
        );
        reader.join().unwrap();
        drop(held);
        assert_eq!(lock.reader_count(), 0);
        assert!(lock.try_write().is_some());
    });
}

/// A writer granted the lock and cancelled before it runs releases it,
/// which grants the readers behind it; in the end the lock is free.
#[test]
fn cancel_after_the_grant_passes_the_lock_on() {
    spindle::run(|| {
        let lock = Rc::new(RwLock::new(Vec::new()));
        let held = lock.write();
        let l = Rc::clone(&lock);
        let (writer, flag) = spawn_guarded(move || l.write().push("writer"));
        let l = Rc::clone(&lock);
        let reader = spindle::spawn(move || l.read().len());
        settle();
        assert_waiting_sync(&writer);
        drop(held); // granted to `writer`, which has not run
        assert!(lock.is_write_locked());
        writer.cancel();
        assert_cancelled(writer);
        assert!(flag.get());
        settle();
        assert!(reader.is_finished(), "the lock was not passed on");
        assert_eq!(reader.join().unwrap(), 0);
        assert!(lock.read().is_empty());
        assert!(lock.try_write().is_some(), "the lock is free again");
    });
}

/// `spindle::timeout` around a `write` that waits gives `Elapsed`, and
/// the lock is consistent after it: the reader that held it releases
/// and a new writer gets in at once.
#[test]
fn write_under_a_timeout() {
    spindle::run(|| {
        let lock = Rc::new(RwLock::new(0));
        let held = lock.read();
        let l = Rc::clone(&lock);
        let start = Instant::now();
        let e = spindle::timeout(Duration::from_millis(5), move || *l.write() = 1).unwrap_err();
        assert_eq!(e.duration(), Duration::from_millis(5));
        assert!(start.elapsed() >= Duration::from_millis(5));
        drop(held);
        assert_eq!(lock.reader_count(), 0);
        *lock.try_write().expect("free") = 2;
        assert_eq!(*lock.read(), 2);
    });
}
