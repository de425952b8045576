//! The tokio peers' bodies: ping-pong tasks over tokio's channels, and
//! spawn and join.

use std::time::{Duration, Instant};

/// tokio's unbounded and bounded senders behind one `send`, so that one
/// ping-pong body serves both channel groups.
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

/// B's side: answers over `to_a` what arrives over `from_a`, plus one,
/// until A's sender is dropped.
pub async fn tokio_echo<S: TokioSender, R: TokioReceiver>(mut from_a: R, to_a: S) {
    while let Some(v) = from_a.recv_v().await {
        to_a.send_v(v + 1).await;
    }
}

/// A's side, the tokio twin of [`ping`](super::ping): `iters` round trips,
/// each reply checked, after one untimed round trip.
pub async fn tokio_ping_a<S: TokioSender, R: TokioReceiver>(
    iters: u64,
    to_b: S,
    mut from_b: R,
) -> Duration {
    to_b.send_v(0).await;
    assert_eq!(from_b.recv_v().await, Some(1), "warm-up round trip");
    let start = Instant::now();
    for i in 0..iters {
        to_b.send_v(i).await;
        let r = from_b.recv_v().await;
        assert_eq!(r, Some(i + 1), "round trip {i} came back wrong");
    }
    start.elapsed()
}

/// The tokio peer of [`ping`](super::ping): A and B as two spawned tasks
/// over the channels `a_to_b` and `b_to_a`; returns A's timed loop.
pub async fn tokio_ping<S: TokioSender, R: TokioReceiver>(
    iters: u64,
    a_to_b: (S, R),
    b_to_a: (S, R),
) -> Duration {
    let (to_b, from_a) = a_to_b;
    let (to_a, from_b) = b_to_a;
    let task_b = tokio::spawn(tokio_echo(from_a, to_a));
    let task_a = tokio::spawn(tokio_ping_a(iters, to_b, from_b));
    let elapsed = task_a.await.unwrap();
    task_b.await.unwrap();
    elapsed
}

/// `iters` spawns of an empty task, each awaited before the next, from
/// the runtime's `block_on` (tokio's peer of spindle's spawn and join).
pub async fn tokio_spawn_join(iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        tokio::spawn(async {}).await.unwrap();
    }
    start.elapsed()
}
