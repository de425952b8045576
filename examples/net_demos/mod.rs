//! The tour's I/O part: producer and consumer as two fibers over channels,
//! the image downloader against a small HTTP/1.1 server that spindle itself
//! serves on 127.0.0.1, and an echo server with a few clients.
//!
//! Each demo starts its own runtime and writes its lines to a [`Log`] (the
//! one of `runtime_demos`), so the tests can check them. [`SECTIONS`] has
//! them in the tour's shape. Include this file with
//! `#[path = "../examples/net_demos/mod.rs"] mod net_demos;`, after
//! `runtime_demos`.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle::net::{TcpListener, TcpStream};
use spindle::sync::channel;

use super::runtime_demos::Log;

#[path = "http.rs"]
mod http;

/// Python's producer and consumer again, now as two fibers that talk over
/// two channels (requests one way, replies the other) instead of a
/// generator's `send`: the same dialogue, and the same output.
pub fn producer_consumer(log: &Log, items: u32) {
    let log = log.clone();
    spindle::run(move || {
        let (to_consumer, requests) = channel::<u32>();
        let (to_producer, replies) = channel::<&'static str>();
        let l = log.clone();
        let consumer = spindle::spawn(move || {
            for n in requests {
                l.line(format!("[CONSUMER] Consuming {n}..."));
                to_producer.send("200 OK").unwrap();
            }
        });
        for n in 1..=items {
            log.line(format!("[PRODUCER] Producing {n}..."));
            to_consumer.send(n).unwrap();
            let reply = replies.recv().unwrap(); // parks until the consumer answers
            log.line(format!("[PRODUCER] Consumer return: {reply}"));
        }
        drop(to_consumer); // the consumer's loop ends
        consumer.join().unwrap();
    });
}

/// Go's `select`: a worker waits on a job channel and a quit channel at
/// once, with a timeout. It takes `jobs` jobs, then, idle, says so after
/// 10 ms of nothing; told to quit, it stops.
pub fn select_worker(log: &Log, jobs: u32) {
    let log = log.clone();
    spindle::run(move || {
        let (job_tx, job_rx) = channel::<u32>();
        let (quit_tx, quit_rx) = channel::<()>();
        let (idle_tx, idle_rx) = channel::<()>();
        let l = log.clone();
        let worker = spindle::spawn(move || loop {
            spindle::select! {
                recv(job_rx) -> job => l.line(format!("[WORKER] job {}", job.unwrap())),
                recv(quit_rx) -> _ => {
                    l.line("[WORKER] told to quit");
                    break;
                }
                default(Duration::from_millis(10)) => {
                    l.line("[WORKER] nothing for 10 ms");
                    idle_tx.send(()).unwrap();
                }
            }
        });
        for n in 1..=jobs {
            job_tx.send(n).unwrap();
        }
        idle_rx.recv().unwrap(); // parks until the worker has run dry
        quit_tx.send(()).unwrap();
        worker.join().unwrap();
    });
}

/// What [`image_downloader`] measured.
#[derive(Debug, Clone, Copy)]
pub struct DownloadTimes {
    /// Fetching the images one after another.
    pub sequential: Duration,
    /// Fetching them in a fiber each.
    pub concurrent: Duration,
}

/// The image downloader: `n` images from the local server (each answer
/// delayed by `latency`), one after another, then a fiber per image. Every
/// byte of every image is checked.
pub fn image_downloader(log: &Log, n: usize, latency: Duration) -> DownloadTimes {
    let log = log.clone();
    spindle::run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        spindle::spawn(move || {
            http::serve_images(
                || listener.accept().map(|(c, _)| c),
                latency,
                spindle::sleep,
            )
        });
        let download = move |i: usize| {
            let conn = TcpStream::connect(addr).expect("connect");
            let body = http::get(conn, addr, &format!("/images/{i}.png")).expect("download");
            assert!(body == http::image(i), "image {i} arrived corrupted");
            body.len()
        };

        let start = Instant::now();
        let bytes: usize = (0..n).map(download).sum();
        let sequential = start.elapsed();
        log.line(format!(
            "sequential: {n} images, {} KiB, in {:.0} ms",
            bytes / 1024,
            sequential.as_secs_f64() * 1e3
        ));

        let start = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|i| spindle::spawn(move || download(i)))
            .collect();
        let bytes: usize = spindle::join_all(handles)
            .into_iter()
            .map(Result::unwrap)
            .sum();
        let concurrent = start.elapsed();
        log.line(format!(
            "concurrent: {n} images, {} KiB, in {:.0} ms (a fiber each)",
            bytes / 1024,
            concurrent.as_secs_f64() * 1e3
        ));
        log.line(format!(
            "concurrent is {:.1}x faster",
            sequential.as_secs_f64() / concurrent.as_secs_f64()
        ));
        DownloadTimes {
            sequential,
            concurrent,
        }
    })
}

/// Echoes every byte back until the peer closes; the body of the echo
/// server's per-connection fiber (examples/echo_server.rs uses it too).
pub fn echo(mut conn: TcpStream) -> io::Result<u64> {
    let mut buf = [0; 4096];
    let mut total = 0;
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        conn.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// An echo server and `clients` clients on one runtime, each client
/// sending `lines` lines and reading each echo back before the next.
pub fn echo_demo(log: &Log, clients: usize, lines: usize) {
    let log = log.clone();
    spindle::run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        log.line(format!("echo server on {addr}"));
        spindle::spawn(move || {
            for conn in listener.incoming().flatten() {
                spindle::spawn(move || echo(conn));
            }
        });
        let log = Rc::new(log);
        let handles: Vec<_> = (1..=clients)
            .map(|c| {
                let log = Rc::clone(&log);
                spindle::spawn(move || {
                    let conn = TcpStream::connect(addr).unwrap();
                    let mut reader = BufReader::new(&conn);
                    for l in 1..=lines {
                        let text = format!("client {c}, line {l}\n");
                        (&conn).write_all(text.as_bytes()).unwrap();
                        let mut back = String::new();
                        reader.read_line(&mut back).unwrap();
                        assert_eq!(back, text);
                        log.line(format!("client {c} got back: {}", back.trim_end()));
                    }
                })
            })
            .collect();
        spindle::join_all(handles)
            .into_iter()
            .for_each(|r| r.unwrap());
        log.line(format!(
            "{} lines echoed, {clients} connections, one thread",
            clients * lines
        ));
    });
}

/// A tour section: title, one line of what it shows, and the demo.
pub type Section = (&'static str, &'static str, fn() -> Vec<String>);

/// The demos as tour sections.
pub const SECTIONS: &[Section] = &[
    (
        "Channels: producer and consumer",
        "The same dialogue as the generator's, now two fibers talking over two channels.",
        || lines(|log| producer_consumer(log, 5)),
    ),
    (
        "Channels: select",
        "A worker waits on jobs, a quit channel and a 10 ms timeout at once (Go's select).",
        || lines(|log| select_worker(log, 3)),
    ),
    (
        "Network: the image downloader",
        "10 images from a local HTTP/1.1 server that answers after 100 ms: in turn, then at once.",
        || {
            lines(|log| {
                let _ = image_downloader(log, 10, Duration::from_millis(100));
            })
        },
    ),
    (
        "Network: echo server",
        "One fiber per connection; three clients take turns on one thread.",
        || lines(|log| echo_demo(log, 3, 2)),
    ),
];

fn lines(demo: impl FnOnce(&Log)) -> Vec<String> {
    let log = Log::quiet();
    demo(&log);
    log.lines()
}
