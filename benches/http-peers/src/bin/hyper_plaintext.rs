//! The hyper peer of examples/http_server.rs: `GET /plaintext` ->
//! `Hello, World!`, 404 elsewhere, hyper's HTTP/1 server on tokio's
//! multi-thread runtime with as many worker threads as asked. hyper adds
//! the Date header itself (cached per second) and answers pipelined
//! requests in one write with `pipeline_flush`.
//!
//! Usage: hyper_plaintext [--workers N] [--addr 127.0.0.1:8080]

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use http_peers::Args;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

async fn plaintext(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut rsp = if req.uri().path() == "/plaintext" {
        let mut r = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        r
    } else {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    rsp.headers_mut()
        .insert(SERVER, HeaderValue::from_static("hyper"));
    Ok(rsp)
}

fn main() {
    let Args { workers, addr } = Args::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        eprintln!("hyper: {addr}, {workers} workers");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(stream), service_fn(plaintext))
                    .await;
            });
        }
    });
}
