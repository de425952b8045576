//! What the channel benchmarks (`benches/sync.rs`, `benches/shared_sync.rs`)
//! share: criterion's settings, A's side of a ping-pong round trip, and
//! its tokio twin. Included with `mod common;`, so each bench compiles its
//! own copy; not every bench uses every item.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Criterion's settings for both groups: round trips cost from tens of
/// nanoseconds (fibers) to microseconds (threads), so the default sample
/// count fits and a few seconds of measurement are plenty.
pub fn configure(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// A's side of the timed loop: `iters` round trips through `send`/`recv`,
/// each reply checked, after one untimed round trip. Shared by the
/// synchronous peers (spindle, may, std), whose channels have the same
/// shape; tokio's `await`s are in [`tokio_ping`].
pub fn ping(iters: u64, send: impl Fn(u64), recv: impl Fn() -> u64) -> Duration {
    send(0);
    assert_eq!(recv(), 1, "warm-up round trip");
    let start = Instant::now();
    for i in 0..iters {
        send(i);
        let r = recv();
        assert_eq!(r, i + 1, "round trip {i} came back wrong");
    }
    start.elapsed()
}

/// tokio's unbounded and bounded senders behind one `send`, so that one
/// ping-pong body ([`tokio_ping`]) serves both channel groups.
pub trait TokioSender: Send + 'static {
    fn send_v(&self, v: u64) -> impl std::future::Future<Output = ()> + Send;
}

impl TokioSender for tokio::sync::mpsc::UnboundedSender<u64> {
    async fn send_v(&self, v: u64) {
        self.send(v).unwrap();
    }
}

impl TokioSender for tokio::sync::mpsc::Sender<u64> {
    async fn send_v(&self, v: u64) {
        self.send(v).await.unwrap();
    }
}

/// tokio's two receivers behind one `recv`.
pub trait TokioReceiver: Send + 'static {
    fn recv_v(&mut self) -> impl std::future::Future<Output = Option<u64>> + Send;
}

impl TokioReceiver for tokio::sync::mpsc::UnboundedReceiver<u64> {
    async fn recv_v(&mut self) -> Option<u64> {
        self.recv().await
    }
}

impl TokioReceiver for tokio::sync::mpsc::Receiver<u64> {
    async fn recv_v(&mut self) -> Option<u64> {
        self.recv().await
    }
}

/// The tokio peer of [`ping`]: A and B as two spawned tasks over the
/// channels `a_to_b` and `b_to_a`; returns A's timed loop.
pub async fn tokio_ping<S: TokioSender, R: TokioReceiver>(
    iters: u64,
    a_to_b: (S, R),
    b_to_a: (S, R),
) -> Duration {
    let (to_b, mut from_a) = a_to_b;
    let (to_a, mut from_b) = b_to_a;
    let task_b = tokio::spawn(async move {
        while let Some(v) = from_a.recv_v().await {
            to_a.send_v(v + 1).await;
        }
    });
    let task_a = tokio::spawn(async move {
        to_b.send_v(0).await;
        assert_eq!(from_b.recv_v().await, Some(1), "warm-up round trip");
        let start = Instant::now();
        for i in 0..iters {
            to_b.send_v(i).await;
            let r = from_b.recv_v().await;
            assert_eq!(r, Some(i + 1), "round trip {i} came back wrong");
        }
        start.elapsed()
    });
    let elapsed = task_a.await.unwrap();
    task_b.await.unwrap();
    elapsed
}

/// The ping-pong between two OS threads: B answers over `b_to_a` what
/// arrives over `a_to_b` until A's sender is dropped, A runs [`ping`];
/// both are spawned threads. `send` and `recv` are the channel's own
/// (std's and crossbeam's have the same shape, not the same types).
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
    let thread_b = std::thread::spawn(move || {
        while let Some(v) = recv(&from_a) {
            send(&to_a, v + 1);
        }
    });
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
