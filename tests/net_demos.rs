//! The I/O demos of the tour (channels, the image downloader, the echo
//! server), run directly with small settings, their output checked.

#[path = "../examples/net_demos/mod.rs"]
mod net_demos;
#[path = "../examples/runtime_demos/mod.rs"]
mod runtime_demos;

use std::time::Duration;

use runtime_demos::Log;

/// The two fibers produce exactly the generator version's dialogue, in
/// order: the producer parks on the reply channel until the consumer
/// answers.
#[test]
fn producer_and_consumer_take_turns_over_channels() {
    let log = Log::quiet();
    net_demos::producer_consumer(&log, 3);
    let mut expected = Vec::new();
    for n in 1..=3 {
        expected.push(format!("[PRODUCER] Producing {n}..."));
        expected.push(format!("[CONSUMER] Consuming {n}..."));
        expected.push(String::from("[PRODUCER] Consumer return: 200 OK"));
    }
    assert_eq!(log.lines(), expected);
}

/// The worker takes every job in order, reports the timeout once it has
/// run dry, and stops when told to.
#[test]
fn select_worker_takes_jobs_then_times_out_then_quits() {
    let log = Log::quiet();
    net_demos::select_worker(&log, 4);
    let mut expected: Vec<String> = (1..=4).map(|n| format!("[WORKER] job {n}")).collect();
    expected.push(String::from("[WORKER] nothing for 10 ms"));
    expected.push(String::from("[WORKER] told to quit"));
    assert_eq!(log.lines(), expected);
}

/// Eight downloads from a server that answers after 50 ms each: in turn
/// they take at least 400 ms; at once, the waits overlap (every byte is
/// checked inside the demo).
#[test]
fn concurrent_downloads_overlap_their_waits() {
    let latency = Duration::from_millis(50);
    let log = Log::quiet();
    let t = net_demos::image_downloader(&log, 8, latency);
    assert!(t.sequential >= latency * 8, "{t:?}");
    assert!(t.concurrent >= latency, "{t:?}");
    assert!(t.concurrent * 2 < t.sequential, "{t:?}");
    let lines = log.lines();
    assert!(
        lines[0].starts_with("sequential: 8 images, 384 KiB"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("concurrent: 8 images, 384 KiB"),
        "{lines:?}"
    );
}

/// Every client gets each of its lines back, in its order, and all of them
/// are served by one thread.
#[test]
fn echo_server_serves_every_client_in_order() {
    let log = Log::quiet();
    net_demos::echo_demo(&log, 4, 3);
    let lines = log.lines();
    for c in 1..=4 {
        let mine: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("client {c} got back")))
            .collect();
        let want: Vec<String> = (1..=3)
            .map(|l| format!("client {c} got back: client {c}, line {l}"))
            .collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>());
    }
    assert_eq!(
        lines.last().unwrap(),
        "12 lines echoed, 4 connections, one thread"
    );
}
