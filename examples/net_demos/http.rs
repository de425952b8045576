//! The image downloader's local HTTP/1.1 server and client, written once
//! over `std::io` so that both versions of the demo share them: the
//! tour's, over spindle's sockets (`net_demos`), and the `hook` feature's,
//! over plain `std::net` (examples/monkey_patch.rs). Include it with
//! `#[path = "net_demos/http.rs"] mod http;`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// The size of each "image" the HTTP server serves.
pub const IMAGE_BYTES: usize = 48 * 1024;

/// The bytes of image `i`: a pattern that a client can check.
pub fn image(i: usize) -> Vec<u8> {
    (0..IMAGE_BYTES)
        .map(|k| (k.wrapping_mul(31) ^ i.wrapping_mul(131)) as u8)
        .collect()
}

/// Serves `GET /images/<i>.png` over HTTP/1.1, one request per connection
/// from `accept`, each in a fiber of its own that answers after `latency`
/// (slept with `sleep`): the stand-in for a slow server far away. Runs
/// until `accept` fails or the runtime cancels it.
pub fn serve_images<S: Read + Write + 'static>(
    mut accept: impl FnMut() -> io::Result<S>,
    latency: Duration,
    sleep: fn(Duration),
) {
    while let Ok(conn) = accept() {
        spindle::spawn(move || {
            let _ = answer(conn, latency, sleep);
        });
    }
}

/// One HTTP exchange on the server side.
fn answer(mut conn: impl Read + Write, latency: Duration, sleep: fn(Duration)) -> io::Result<()> {
    let mut reader = BufReader::new(&mut conn);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Headers, up to the blank line.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    sleep(latency);
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let index = path
        .strip_prefix("/images/")
        .and_then(|p| p.strip_suffix(".png"))
        .and_then(|n| n.parse::<usize>().ok());
    drop(reader); // a GET has no body: nothing buffered is lost
    let out = &mut conn;
    match index {
        Some(i) => {
            let body = image(i);
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            )?;
            out.write_all(&body)
        }
        None => out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    }
}

/// A minimal HTTP/1.1 GET of `path` from `addr` over the connection
/// `conn`: status line, headers, then `Content-Length` bytes of body.
pub fn get(mut conn: impl Read + Write, addr: SocketAddr, path: &str) -> io::Result<Vec<u8>> {
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(conn);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    if !status.starts_with("HTTP/1.1 200") {
        return Err(io::Error::other(format!("{path}: {}", status.trim())));
    }
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let length = length.ok_or_else(|| io::Error::other("no Content-Length"))?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(body)
}
