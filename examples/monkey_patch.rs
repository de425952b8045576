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

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

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
        spindle::spawn(move || serve(listener, latency));

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

const IMAGE_BYTES: usize = 48 * 1024;

/// The bytes of image `i`: a pattern the client checks.
fn image(i: usize) -> Vec<u8> {
    (0..IMAGE_BYTES)
        .map(|k| (k.wrapping_mul(31) ^ i.wrapping_mul(131)) as u8)
        .collect()
}

/// A plain blocking std HTTP/1.1 server: a fiber per connection, each
/// answer after `latency` (a `std::thread::sleep`).
fn serve(listener: TcpListener, latency: Duration) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        spindle::spawn(move || {
            let _ = answer(conn, latency);
        });
    }
}

fn answer(conn: TcpStream, latency: Duration) -> io::Result<()> {
    let mut reader = BufReader::new(&conn);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    std::thread::sleep(latency);
    let index = request_line
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.strip_prefix("/images/"))
        .and_then(|p| p.strip_suffix(".png"))
        .and_then(|n| n.parse::<usize>().ok());
    let mut out = &conn;
    match index {
        Some(i) => {
            let body = image(i);
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            out.write_all(&body)
        }
        None => out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    }
}

/// GET image `i` with a plain std TcpStream, check it, return its size.
fn download(addr: SocketAddr, i: usize) -> usize {
    let mut conn = TcpStream::connect(addr).expect("connect");
    write!(
        conn,
        "GET /images/{i}.png HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut reader = BufReader::new(conn);
    let mut length = None;
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("read a header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("Content-Length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length.expect("Content-Length")];
    reader.read_exact(&mut body).expect("read the body");
    assert!(body == image(i), "image {i} arrived corrupted");
    body.len()
}
