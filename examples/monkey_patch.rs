//! gevent's `monkey.patch_all()` demos, with the `hook` feature: code that
//! knows nothing of spindle — `std::thread::sleep`, `std::net::TcpStream`
//! and `TcpListener` — runs concurrently in fibers.
//!
//! 1. gevent's patched example: three fibers each call
//!    `std::thread::sleep(0.5 s)`; their lines interleave and the whole
//!    takes 0.5 s, not 1.5 s.
//! 2. The image downloader written with plain std sockets against a local
//!    HTTP/1.1 server (also plain std, its latency a `std::thread::sleep`):
//!    N images one after another, then a fiber per image, and the ratio.
//!
//! ```text
//! cargo run --release --features hook --example monkey_patch -- [N] [LATENCY_MS]   # default 10 100
//! ```

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

// The demo's HTTP server and client, shared with the tour's downloader
// (there over spindle's sockets, here over std's).
#[path = "net_demos/http.rs"]
mod http;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(10, |a| a.parse().expect("N"));
    let ms: u64 = args.next().map_or(100, |a| a.parse().expect("LATENCY_MS"));

    println!("== gevent's patched example: three fibers call std::thread::sleep(0.5 s)");
    let start = Instant::now();
    spindle::run(|| {
        let tasks: Vec<_> = (1..=3)
            .map(|i| {
                spindle::spawn(move || {
                    println!("Task {i} start");
                    std::thread::sleep(Duration::from_millis(500)); // unmodified blocking call
                    println!("Task {i} done");
                })
            })
            .collect();
        spindle::join_all(tasks);
    });
    println!(
        "three 0.5 s sleeps took {:.2} s (blocking the thread they would take 1.5 s)",
        start.elapsed().as_secs_f64()
    );
    assert!(spindle::hook::installed(), "the hooks did not win the link");

    println!();
    println!("== image downloader over std::net, {n} images, server latency {ms} ms");
    let latency = Duration::from_millis(ms);
    let (sequential, concurrent) = spindle::run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        // A plain blocking std server; its latency a `std::thread::sleep`.
        spindle::spawn(move || {
            http::serve_images(
                || listener.accept().map(|(c, _)| c),
                latency,
                std::thread::sleep,
            )
        });

        let start = Instant::now();
        let bytes: usize = (0..n).map(|i| download(addr, i)).sum();
        let sequential = start.elapsed();
        println!(
            "sequential: {n} images, {} KiB, in {:.0} ms",
            bytes / 1024,
            sequential.as_secs_f64() * 1e3
        );

        let start = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|i| spindle::spawn(move || download(addr, i)))
            .collect();
        let bytes: usize = spindle::join_all(handles)
            .into_iter()
            .map(Result::unwrap)
            .sum();
        let concurrent = start.elapsed();
        println!(
            "concurrent: {n} images, {} KiB, in {:.0} ms (a fiber each)",
            bytes / 1024,
            concurrent.as_secs_f64() * 1e3
        );
        (sequential, concurrent)
    });
    println!(
        "concurrent is {:.1}x faster",
        sequential.as_secs_f64() / concurrent.as_secs_f64()
    );
}

/// GET image `i` with a plain std `TcpStream`, check it, return its size.
fn download(addr: SocketAddr, i: usize) -> usize {
    let conn = TcpStream::connect(addr).expect("connect");
    let body = http::get(conn, addr, &format!("/images/{i}.png")).expect("download");
    assert!(body == http::image(i), "image {i} arrived corrupted");
    body.len()
}
