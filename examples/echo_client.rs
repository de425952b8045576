//! A client for `echo_server`: many connections at once, one fiber each,
//! every echoed byte checked.
//!
//! ```text
//! cargo run --release --example echo_client -- [ADDR] [CONNECTIONS] [MESSAGES]
//! ```
//!
//! Defaults: 127.0.0.1:7007, 100 connections, 1,000 messages of 64 bytes
//! each. Prints the round trips per second and the median and 99th
//! percentile latency of one round trip.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use spindle::net::TcpStream;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7007".into());
    let connections: usize = args.next().map_or(100, |a| a.parse().expect("CONNECTIONS"));
    let messages: usize = args.next().map_or(1_000, |a| a.parse().expect("MESSAGES"));
    let result = spindle::run(move || -> std::io::Result<(Duration, Vec<Duration>)> {
        let streams: Vec<TcpStream> = (0..connections)
            .map(|_| TcpStream::connect(addr.as_str()))
            .collect::<Result<_, _>>()?;
        let start = Instant::now();
        let handles: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(c, mut conn)| {
                spindle::spawn(move || -> std::io::Result<Vec<Duration>> {
                    conn.set_nodelay(true)?;
                    let mut latencies = Vec::with_capacity(messages);
                    let mut out = [0u8; 64];
                    let mut back = [0u8; 64];
                    for m in 0..messages {
                        for (k, b) in out.iter_mut().enumerate() {
                            *b = (c + m + k) as u8;
                        }
                        let t = Instant::now();
                        conn.write_all(&out)?;
                        conn.read_exact(&mut back)?;
                        latencies.push(t.elapsed());
                        if back != out {
                            return Err(std::io::Error::other("echo mismatch"));
                        }
                    }
                    Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(connections * messages);
        for r in spindle::join_all(handles) {
            all.extend(r.expect("client fiber")?);
        }
        Ok((start.elapsed(), all))
    });
    match result {
        Ok((wall, mut latencies)) => {
            latencies.sort_unstable();
            let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
            println!(
                "{} round trips on {connections} connections in {:.3} s: {:.0} per second; \
                 latency p50 {:?}, p99 {:?}",
                latencies.len(),
                wall.as_secs_f64(),
                latencies.len() as f64 / wall.as_secs_f64(),
                pct(0.50),
                pct(0.99)
            );
        }
        Err(e) => {
            eprintln!("echo_client: {e}");
            std::process::exit(1);
        }
    }
}
