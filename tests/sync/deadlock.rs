//! The deadlock report names the primitive each stuck fiber waits on.

use super::*;

/// The main fiber waiting in `recv` on a channel whose only sender it
/// holds itself is a deadlock: `run` panics with the report, which names
/// the method the main fiber waits in.
#[test]
fn the_report_names_receiver_recv() {
    let r = panic::catch_unwind(|| {
        spindle::run(|| {
            let (tx, rx) = channel::<u32>();
            let _ = rx.recv();
            drop(tx);
        })
    });
    let msg = panic_message(&*r.unwrap_err());
    assert!(msg.contains("deadlock"), "{msg}");
    assert!(msg.contains("Receiver::recv"), "{msg}");
    assert!(
        msg.contains("\"main\" [waiting on a sync primitive: spindle::sync::Receiver::recv]"),
        "{msg}"
    );
}

/// The report names what each stuck fiber waits on, for every
/// primitive that can wait.
#[test]
fn the_report_names_each_fibers_primitive() {
    let r = panic::catch_unwind(|| {
        spindle::run(|| {
            let named = |name: &str, f: Box<dyn FnOnce()>| {
                spindle::Builder::new().name(name.into()).spawn(f).unwrap()
            };
            let m = Rc::new(Mutex::new(()));
            let holder = Rc::clone(&m);
            let held = holder.lock();
            let st = Rc::new((Mutex::new(()), Condvar::new()));
            let sem = Rc::new(Semaphore::new(0));
            let wg = WaitGroup::new();
            wg.add(1);
            let barrier = Rc::new(Barrier::new(2));
            let (tx, rx) = sync_channel::<u32>(0);
            let rw = Rc::new(RwLock::new(()));
            let reader = Rc::clone(&rw);
            let read_held = reader.read();
            let ev = Rc::new(Event::new());
            let cell = Rc::new(OnceCell::<u32>::new());
            let c = Rc::clone(&cell);
            let (_tx2, rx2) = channel::<u32>();
            let _keep = (Rc::clone(&sem), wg.clone(), rx, Rc::clone(&ev));
            let hs = vec![
                named("locker", Box::new(move || drop(m.lock()))),
                named("cv", Box::new(move || drop(st.1.wait(st.0.lock())))),
                named("sem", Box::new(move || drop(sem.acquire()))),
                named("wg", Box::new(move || wg.wait())),
                named(
                    "barrier",
                    Box::new(move || {
                        let _ = barrier.wait();
                    }),
                ),
                named(
                    "sender",
                    Box::new(move || {
                        let _ = tx.send(1);
                    }),
                ),
                named("writer", Box::new(move || drop(rw.write()))),
                named("event", Box::new(move || ev.wait())),
                named(
                    "init",
                    Box::new(move || {
                        c.get_or_init(|| {
                            let _ = spindle::select! { recv(rx2) -> m => m };
                            0
                        });
                    }),
                ),
                named(
                    "cell",
                    Box::new(move || {
                        cell.get_or_init(|| 1);
                    }),
                ),
            ];
            spindle::join_all(hs);
            drop((held, read_held));
        })
    });
    let msg = panic_message(&*r.unwrap_err());
    assert!(
        msg.starts_with("all fibers are asleep - deadlock!"),
        "{msg}"
    );
    for (name, what) in [
        ("locker", "Mutex::lock"),
        ("cv", "Condvar::wait"),
        ("sem", "Semaphore::acquire"),
        ("wg", "WaitGroup::wait"),
        ("barrier", "Barrier::wait"),
        ("sender", "SyncSender::send"),
        ("writer", "RwLock::write"),
        ("event", "Event::wait"),
        ("init", "Select::select"),
        ("cell", "OnceCell::get_or_init"),
    ] {
        let line = format!("\"{name}\" [waiting on a sync primitive: spindle::sync::{what}]");
        assert!(msg.contains(&line), "missing {line:?} in\n{msg}");
    }
}
