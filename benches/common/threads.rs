//! Ping-pong between OS threads, the peer of the fibers' round trips.

use std::thread::JoinHandle;
use std::time::Duration;

use super::ping;

/// B's side on a thread of its own: answers over `to_a` what arrives over
/// `from_a`, plus one, until A's sender is dropped. `send` and `recv` are
/// the channel's own (std's and crossbeam's have the same shape, not the
/// same types).
pub fn echo_thread<S, R>(
    from_a: R,
    to_a: S,
    send: fn(&S, u64),
    recv: fn(&R) -> Option<u64>,
) -> JoinHandle<()>
where
    S: Send + 'static,
    R: Send + 'static,
{
    std::thread::spawn(move || {
        while let Some(v) = recv(&from_a) {
            send(&to_a, v + 1);
        }
    })
}

/// The ping-pong between two OS threads: B ([`echo_thread`]) answers over
/// `b_to_a` what arrives over `a_to_b`, A runs [`ping`]; both are spawned
/// threads.
pub fn thread_ping<S, R>(
    iters: u64,
    a_to_b: (S, R),
    b_to_a: (S, R),
    send: fn(&S, u64),
    recv: fn(&R) -> Option<u64>,
) -> Duration
where
    S: Send + 'static,
    R: Send + 'static,
{
    let (to_b, from_a) = a_to_b;
    let (to_a, from_b) = b_to_a;
    let thread_b = echo_thread(from_a, to_a, send, recv);
    let thread_a =
        std::thread::spawn(move || ping(iters, |v| send(&to_b, v), || recv(&from_b).unwrap()));
    let elapsed = thread_a.join().unwrap();
    thread_b.join().unwrap();
    elapsed
}

/// The `std_thread` peer of the unbounded ping-pong groups: two OS threads
/// with `std::sync::mpsc::channel`.
pub fn std_thread_pingpong(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    g.bench_function("std_thread", |b| {
        b.iter_custom(|iters| {
            use std::sync::mpsc::channel;
            thread_ping(
                iters,
                channel::<u64>(),
                channel::<u64>(),
                |s, v| s.send(v).unwrap(),
                |r| r.recv().ok(),
            )
        })
    });
}
