//! A TechEmpower-style plaintext HTTP server on every worker:
//! `GET /plaintext` answers `Hello, World!` with `Server`, `Content-Type`,
//! `Content-Length` and `Date` headers; any other path gets 404, a request
//! that does not parse gets 400 and the connection is closed.
//!
//! Each connection is a fiber that reads what has arrived, answers every
//! complete request in it (HTTP/1.1 keep-alive and pipelining: a batch of
//! 16 pipelined requests is answered in one `write`), and parks until the
//! next bytes come. Requests are parsed with `httparse`. The `Date` header
//! is formatted once a second per worker by a fiber of that worker, never
//! per request.
//!
//! ```text
//! cargo run --release --example http_server -- --workers 2 [--addr 127.0.0.1:8080] [--spread reuseport|handoff]
//! wrk -t1 -c64 -d10s http://127.0.0.1:8080/plaintext
//! ```
//!
//! BENCHMARKS.md ("HTTP plaintext") compares it with may_minihttp and
//! hyper (benches/http-peers/run.sh).

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spindle::net::{Server, Spread, TcpStream};

/// The most headers a request may have (more: 400).
const MAX_HEADERS: usize = 32;
/// The most bytes of requests not yet answered a connection buffers
/// (more: 400), so a client cannot make it grow without end.
const MAX_PENDING: usize = 64 * 1024;
/// How much a connection reads at once.
const READ_CHUNK: usize = 4096;

const BODY: &[u8] = b"Hello, World!";

fn main() -> io::Result<()> {
    let mut workers = 1;
    let mut addr = String::from("127.0.0.1:8080");
    let mut spread = Spread::ReusePort;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{a} needs a value"))
            })
        };
        match a.as_str() {
            "--workers" => {
                workers = value()?.parse().map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("--workers: {e}"))
                })?
            }
            "--addr" => addr = value()?,
            "--spread" => {
                spread = match value()?.as_str() {
                    "reuseport" => Spread::ReusePort,
                    "handoff" => Spread::HandOff,
                    other => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("--spread {other}: reuseport or handoff"),
                        ))
                    }
                }
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown argument {a}; usage: http_server [--workers N] [--addr ADDR] [--spread reuseport|handoff]"),
                ))
            }
        }
    }
    let rt = spindle::Runtime::builder().workers(workers).build()?;
    rt.block_on(|| {
        start_date_clocks();
        let server = Server::builder().spread(spread).bind(&addr[..], serve)?;
        eprintln!(
            "http_server: http://{}/plaintext on {workers} worker(s), {spread:?}",
            server.local_addr()
        );
        server.wait()
    })
}

/// Serves one connection until the client closes it, sends a request that
/// does not parse, or asks for `Connection: close`.
pub fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    // Requests read but not answered yet are `input[..filled]`.
    let mut input = vec![0; READ_CHUNK];
    let mut filled = 0;
    let mut output = Vec::with_capacity(READ_CHUNK);
    loop {
        if filled == input.len() {
            if input.len() >= MAX_PENDING {
                bad_request(&mut output);
                let _ = conn.write_all(&output);
                return;
            }
            input.resize(input.len() * 2, 0);
        }
        match conn.read(&mut input[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let (used, close) = answer(&input[..filled], &mut output);
        input.copy_within(used..filled, 0);
        filled -= used;
        if !output.is_empty() {
            if conn.write_all(&output).is_err() {
                return;
            }
            output.clear();
        }
        if close {
            return;
        }
    }
}

/// Answers every complete request at the start of `input`, appending the
/// responses to `output`; returns how many bytes of `input` it used and
/// whether the connection must close now (a bad request, answered 400, or
/// `Connection: close`).
pub fn answer(input: &[u8], output: &mut Vec<u8>) -> (usize, bool) {
    let mut used = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&input[used..]) {
            Ok(httparse::Status::Partial) => return (used, false),
            Err(_) => {
                bad_request(output);
                return (used, true);
            }
            Ok(httparse::Status::Complete(n)) => {
                let mut close = req.version == Some(0);
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("connection") {
                        close = h.value.eq_ignore_ascii_case(b"close");
                    } else if (h.name.eq_ignore_ascii_case("content-length") && h.value != b"0")
                        || h.name.eq_ignore_ascii_case("transfer-encoding")
                    {
                        // A plaintext server takes no bodies.
                        bad_request(output);
                        return (used, true);
                    }
                }
                used += n;
                if req.method == Some("GET") && req.path == Some("/plaintext") {
                    respond(output, "200 OK", BODY, close);
                } else {
                    respond(output, "404 Not Found", b"", close);
                }
                if close {
                    return (used, true);
                }
            }
        }
    }
}

fn bad_request(output: &mut Vec<u8>) {
    respond(output, "400 Bad Request", b"", true);
}

/// Appends one response.
fn respond(output: &mut Vec<u8>, status: &str, body: &[u8], close: bool) {
    output.extend_from_slice(b"HTTP/1.1 ");
    output.extend_from_slice(status.as_bytes());
    output.extend_from_slice(b"\r\nServer: spindle\r\nContent-Type: text/plain\r\nDate: ");
    DATE.with(|d| output.extend_from_slice(&d.get()));
    if close {
        output.extend_from_slice(b"\r\nConnection: close");
    }
    output.extend_from_slice(b"\r\nContent-Length: ");
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut len = body.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (len % 10) as u8;
        len /= 10;
        if len == 0 {
            break;
        }
    }
    output.extend_from_slice(&digits[at..]);
    output.extend_from_slice(b"\r\n\r\n");
    output.extend_from_slice(body);
}

thread_local! {
    /// This worker's `Date` value, refreshed once a second by its clock
    /// fiber (see [`start_date_clocks`]).
    static DATE: Cell<[u8; 29]> = Cell::new(http_date(SystemTime::now()));
}

/// Starts one fiber per worker that rewrites the worker's `Date` value
/// every second; they end when the runtime shuts down.
pub fn start_date_clocks() {
    for w in 0..spindle::worker_count() {
        drop(spindle::spawn_on(w, || loop {
            DATE.with(|d| d.set(http_date(SystemTime::now())));
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            // Wake just after the next second starts.
            spindle::sleep(Duration::from_nanos(
                1_000_000_000 - u64::from(now.subsec_nanos()),
            ));
        }));
    }
}

/// `t` as an HTTP date (RFC 9110, IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> [u8; 29] {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Days to a civil date (Howard Hinnant's algorithm), from 0000-03-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = format!(
        "{weekday}, {day:02} {} {year:04} {h:02}:{m:02}:{s:02} GMT",
        months[(month - 1) as usize]
    );
    let mut out = [b' '; 29];
    out.copy_from_slice(&text.as_bytes()[..29]);
    out
}
