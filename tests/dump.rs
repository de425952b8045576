//! `spindle::dump`: each fiber's line (state, what it waits for, where it
//! was spawned, a function from its backtrace), a dump during heavy
//! switching disturbing nobody, and a dump outside a runtime.

mod common;

use std::io::Write;
use std::time::Duration;

use common::dump::{fiber, has_frame};
use spindle::sync as mpsc;
use spindle::{Dump, TaskState};

#[inline(never)]
fn nap_in_here() {
    spindle::sleep(Duration::from_secs(5));
}

#[inline(never)]
fn receive_in_here(rx: mpsc::Receiver<u32>) -> Option<u32> {
    rx.recv().ok()
}

#[inline(never)]
fn read_in_here(mut s: spindle::net::TcpStream) -> usize {
    use std::io::Read;
    let mut buf = [0u8; 8];
    s.read(&mut buf).unwrap()
}

#[inline(never)]
fn join_in_here(h: spindle::JoinHandle<()>) {
    h.join().unwrap();
}

#[inline(never)]
fn dump_in_here() -> Dump {
    // Not a tail call, so that this frame is on the stack.
    std::hint::black_box(spindle::dump())
}

#[test]
fn every_fiber_has_its_state_wait_spawn_site_and_frames() {
    spindle::run(|| {
        let file = file!();
        let sleeper = spindle::Builder::new()
            .name("sleeper".into())
            .spawn(nap_in_here)
            .unwrap();
        let sleeper_line = line!() - 2;
        let (tx, rx) = mpsc::channel::<u32>();
        let receiver = spindle::Builder::new()
            .name("receiver".into())
            .spawn(move || receive_in_here(rx))
            .unwrap();
        let receiver_line = line!() - 2;
        let listener = spindle::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = spindle::Builder::new()
            .name("reader".into())
            .spawn(move || read_in_here(listener.accept().unwrap().0))
            .unwrap();
        let reader_line = line!() - 2;
        let mut client = spindle::net::TcpStream::connect(addr).unwrap();
        let victim = spindle::spawn(|| spindle::sleep(Duration::from_secs(5)));
        let joiner = spindle::Builder::new()
            .name("joiner".into())
            .spawn(move || join_in_here(victim))
            .unwrap();
        let joiner_line = line!() - 2;
        let unstarted = spindle::Builder::new()
            .name("unstarted".into())
            .spawn(|| ())
            .unwrap();
        let unstarted_line = line!() - 2;
        // Let every fiber but the last reach its wait.
        for _ in 0..4 {
            spindle::yield_now();
        }
        let unstarted2 = spindle::Builder::new()
            .name("not yet".into())
            .spawn(|| ())
            .unwrap();

        let dump = dump_in_here();
        let text = dump.to_string();

        let s = fiber(&dump, "sleeper");
        assert_eq!(s.state(), TaskState::Sleeping, "{text}");
        assert_eq!(
            (s.spawned_at().file(), s.spawned_at().line()),
            (file, sleeper_line)
        );
        assert!(has_frame(s, "nap_in_here"), "{text}");
        assert!(s.stack_used().unwrap() > 0 && s.stack_used().unwrap() < s.stack_size());

        let r = fiber(&dump, "receiver");
        assert_eq!(r.state(), TaskState::WaitingSync, "{text}");
        assert!(r.waiting_for().unwrap().contains("recv"), "{text}");
        assert_eq!(r.spawned_at().line(), receiver_line);
        assert!(has_frame(r, "receive_in_here"), "{text}");

        let io = fiber(&dump, "reader");
        assert_eq!(io.state(), TaskState::WaitingIo, "{text}");
        let on = io.waiting_for().unwrap();
        assert!(on.starts_with("fd ") && on.ends_with(" readable"), "{text}");
        assert_eq!(io.spawned_at().line(), reader_line);
        assert!(has_frame(io, "read_in_here"), "{text}");

        let j = fiber(&dump, "joiner");
        assert_eq!(j.state(), TaskState::WaitingJoin, "{text}");
        let victim_id = dump
            .fibers()
            .iter()
            .find(|f| f.name().is_none() && f.state() == TaskState::Sleeping)
            .unwrap()
            .id();
        assert_eq!(
            j.waiting_for(),
            Some(&*format!("fiber {victim_id}")),
            "{text}"
        );
        assert_eq!(j.spawned_at().line(), joiner_line);
        assert!(has_frame(j, "join_in_here"), "{text}");

        // Started and finished before the dump: gone.
        assert!(
            dump.fibers().iter().all(|f| f.name() != Some("unstarted")),
            "{text}"
        );
        let _ = unstarted_line;
        let n = fiber(&dump, "not yet");
        assert_eq!(n.state(), TaskState::Ready);
        assert!(n.backtrace().is_empty() && n.stack_used().is_none());

        let me = fiber(&dump, "main");
        assert_eq!(me.state(), TaskState::Running);
        assert!(has_frame(me, "dump_in_here"), "{text}");
        assert!(
            text.contains(&format!("spawned at {file}:{sleeper_line}:")),
            "{text}"
        );
        // Its 5 s sleep began just before: the time left is at most 5 s
        // (how much less depends on the machine: valgrind is slow).
        let left = text
            .split("\"sleeper\" [sleeping, wakes in ")
            .nth(1)
            .and_then(|t| t.split(" s]").next())
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no time left shown:\n{text}"));
        assert!((0.0..=5.0).contains(&left), "{left}\n{text}");

        // The short form: one line per fiber, with where it waits.
        let short = format!("{dump:#}");
        assert_eq!(short.lines().count(), dump.fibers().len(), "{short}");
        let line = short
            .lines()
            .find(|l| l.contains("\"sleeper\" [sleeping, wakes in "))
            .unwrap();
        assert!(line.contains(" in dump::nap_in_here"), "{line}");
        assert!(
            line.ends_with(&format!("spawned at {file}:{sleeper_line}:14")),
            "{line}"
        );
        // No fiber shows the frames of the dump machinery.
        for f in dump.fibers() {
            for fr in f.backtrace() {
                let name = fr.function();
                assert!(
                    !name.contains("std::backtrace")
                        && !name.starts_with("spindle::runtime::scheduler::")
                        && !name.starts_with("spindle::runtime::spawn::root"),
                    "{text}"
                );
            }
        }

        // The dump woke nobody: each is still where it was, and finishes
        // as it would have.
        let after = spindle::dump();
        for name in ["sleeper", "receiver", "reader", "joiner"] {
            assert_eq!(
                fiber(&after, name).state(),
                fiber(&dump, name).state(),
                "{name}"
            );
        }
        tx.send(7).unwrap();
        assert_eq!(receiver.join().unwrap(), Some(7));
        client.write_all(b"hi").unwrap();
        assert_eq!(reader.join().unwrap(), 2);
        sleeper.cancel();
        sleeper.join().unwrap_err();
        joiner.cancel();
        joiner.join().unwrap_err();
        unstarted.join().unwrap();
        unstarted2.join().unwrap();
    });
}

#[test]
fn a_dump_during_heavy_switching_changes_no_outcome() {
    const PAIRS: usize = 50;
    const ROUNDS: u32 = 200;
    let totals = spindle::run(|| {
        let mut handles = Vec::new();
        for _ in 0..PAIRS {
            let (ping_tx, ping_rx) = mpsc::channel::<u32>();
            let (pong_tx, pong_rx) = mpsc::channel::<u32>();
            handles.push(spindle::spawn(move || {
                let mut got = 0;
                for i in 0..ROUNDS {
                    ping_tx.send(i).unwrap();
                    got += pong_rx.recv().unwrap();
                }
                got
            }));
            handles.push(spindle::spawn(move || {
                let mut got = 0;
                while let Ok(i) = ping_rx.recv() {
                    got += i;
                    pong_tx.send(i).unwrap();
                }
                got
            }));
        }
        let dumper = spindle::spawn(|| {
            let mut seen = 0;
            for _ in 0..20 {
                seen += spindle::dump().fibers().len();
                spindle::yield_now();
            }
            seen
        });
        let seen = dumper.join().unwrap();
        assert!(seen > 20, "the dumps saw the ping-pong fibers");
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let want = (0..ROUNDS).sum::<u32>();
    assert!(totals.iter().all(|&t| t == want), "{totals:?}");
}

#[test]
fn outside_a_runtime_the_dump_is_empty() {
    let dump = spindle::dump();
    assert!(dump.fibers().is_empty());
    assert_eq!(dump.to_string(), "no fibers (not in a runtime)\n");
}

#[inline(never)]
fn stuck_in_here() {
    // Nothing will ever unpark it. Not a tail call, so that this frame is
    // on the stack.
    spindle::park();
    std::hint::black_box(());
}

#[test]
fn the_deadlock_report_names_where_each_fiber_waits_and_was_spawned() {
    let r = std::panic::catch_unwind(|| {
        spindle::run(|| {
            let stuck = spindle::Builder::new()
                .name("stuck".into())
                .spawn(stuck_in_here)
                .unwrap();
            stuck.join().unwrap();
        })
    });
    let payload = r.unwrap_err();
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    let line = msg
        .lines()
        .find(|l| l.contains("\"stuck\" [parked]"))
        .unwrap_or_else(|| panic!("{msg}"));
    assert!(line.contains(" in dump::stuck_in_here"), "{line}");
    assert!(line.contains(&format!("spawned at {}:", file!())), "{line}");
}
