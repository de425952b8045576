//! examples/http_server.rs, served from two workers and spoken to over
//! TCP: the plaintext answer and its headers, keep-alive, a pipelined
//! batch answered in one write, 404, and 400 with the connection closed.

mod common;

#[allow(dead_code)] // its `main` is the example's, not run here
#[path = "../examples/http_server.rs"]
mod http_server;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spindle::net::{Server, TcpStream};
use spindle::Runtime;

/// Runs `client` against the example's server on two workers.
fn with_server(client: impl FnOnce(SocketAddr) + Send) {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        http_server::start_date_clocks();
        let server = Server::bind("127.0.0.1:0", http_server::serve).unwrap();
        client(server.local_addr());
        server.shutdown();
    });
}

/// One parsed response: status line, headers, body.
#[derive(Debug)]
struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads responses from `conn` until `n` have arrived (all of them:
/// a short read means the server closed early).
fn read_responses(conn: &mut TcpStream, n: usize) -> Vec<Response> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while out.len() < n {
        if let Some((r, used)) = parse_response(&buf) {
            out.push(r);
            buf.drain(..used);
            continue;
        }
        let k = conn.read(&mut chunk).unwrap();
        assert!(k > 0, "closed after {} of {n} responses", out.len());
        buf.extend_from_slice(&chunk[..k]);
    }
    assert!(buf.is_empty(), "more than {n} responses");
    out
}

fn parse_response(buf: &[u8]) -> Option<(Response, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end - 4]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "Content-Length")
        .expect("Content-Length")
        .1
        .parse()
        .unwrap();
    if buf.len() < end + len {
        return None;
    }
    let body = buf[end..end + len].to_vec();
    Some((
        Response {
            status,
            headers,
            body,
        },
        end + len,
    ))
}

fn check_plaintext(r: &Response) {
    assert_eq!(r.status, "HTTP/1.1 200 OK", "{r:?}");
    assert_eq!(r.body, b"Hello, World!");
    assert_eq!(r.header("Content-Length"), Some("13"));
    assert_eq!(r.header("Server"), Some("spindle"));
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    let date = r.header("Date").expect("Date");
    assert_eq!(date.len(), 29, "{date}");
    assert!(date.ends_with(" GMT"), "{date}");
}

const GET: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n";

#[test]
fn plaintext_with_keep_alive_and_a_pipelined_batch() {
    let _w = common::watchdog("plaintext_with_keep_alive_and_a_pipelined_batch");
    with_server(|addr| {
        let mut conn = TcpStream::connect(addr).unwrap();
        // Keep-alive: three requests in turn on one connection.
        for _ in 0..3 {
            conn.write_all(GET).unwrap();
            check_plaintext(&read_responses(&mut conn, 1)[0]);
        }
        // 16 pipelined in one write, a 404 in the middle.
        let mut batch = Vec::new();
        for i in 0..16 {
            if i == 7 {
                batch.extend_from_slice(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
            } else {
                batch.extend_from_slice(GET);
            }
        }
        conn.write_all(&batch).unwrap();
        let rs = read_responses(&mut conn, 16);
        for (i, r) in rs.iter().enumerate() {
            if i == 7 {
                assert_eq!(r.status, "HTTP/1.1 404 Not Found", "{r:?}");
                assert!(r.body.is_empty());
            } else {
                check_plaintext(r);
            }
        }
        // A request split across two writes is answered once whole.
        conn.write_all(&GET[..10]).unwrap();
        spindle::sleep(Duration::from_millis(20));
        conn.write_all(&GET[10..]).unwrap();
        check_plaintext(&read_responses(&mut conn, 1)[0]);
    });
}

/// What makes "one write" true: the handler's `answer` turns a whole
/// pipelined batch into one buffer of 16 responses.
#[test]
fn a_pipelined_batch_becomes_one_buffer() {
    let batch = GET.repeat(16);
    let mut out = Vec::new();
    let (used, close) = http_server::answer(&batch, &mut out);
    assert_eq!((used, close), (batch.len(), false));
    assert_eq!(
        out.windows(13).filter(|w| w == b"Hello, World!").count(),
        16
    );
    // A partial request at the end is left for the next read.
    let mut out = Vec::new();
    let (used, close) = http_server::answer(&[GET, &GET[..20]].concat(), &mut out);
    assert_eq!((used, close), (GET.len(), false));
}

#[test]
fn bad_request_is_answered_400_and_closed() {
    let _w = common::watchdog("bad_request_is_answered_400_and_closed");
    with_server(|addr| {
        let mut conn = TcpStream::connect(addr).unwrap();
        // A good request first, then garbage: both answered, then EOF.
        conn.write_all(GET).unwrap();
        conn.write_all(b"GET /plaintext HTTP/1.1\r\nBad Header\r\n\r\n")
            .unwrap();
        let mut all = Vec::new();
        conn.read_to_end(&mut all).unwrap();
        let (first, used) = parse_response(&all).unwrap();
        check_plaintext(&first);
        let (second, used2) = parse_response(&all[used..]).unwrap();
        assert_eq!(second.status, "HTTP/1.1 400 Bad Request", "{second:?}");
        assert_eq!(second.header("Connection"), Some("close"));
        assert_eq!(used + used2, all.len());

        // A request with a body is refused the same way.
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(b"POST /plaintext HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap();
        let mut all = Vec::new();
        conn.read_to_end(&mut all).unwrap();
        assert!(all.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));

        // Connection: close is honoured after the answer.
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(b"GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut all = Vec::new();
        conn.read_to_end(&mut all).unwrap();
        let (r, used) = parse_response(&all).unwrap();
        assert_eq!(r.body, b"Hello, World!");
        assert_eq!(used, all.len());
    });
}

#[test]
fn http_date_is_imf_fixdate() {
    let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
    assert_eq!(&http_server::http_date(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
    assert_eq!(
        &http_server::http_date(leap),
        b"Tue, 29 Feb 2000 00:00:00 GMT"
    );
    let now = http_server::http_date(SystemTime::now());
    assert!(now.ends_with(b" GMT"));
}
