//! The may_minihttp peer of examples/http_server.rs: `GET /plaintext` ->
//! `Hello, World!`, 404 elsewhere, on may's coroutines.
//!
//! Usage: may_plaintext [--workers N] [--addr 127.0.0.1:8080]

use std::io;

use http_peers::Args;
use may_minihttp::{HttpServer, HttpService, Request, Response};

#[derive(Clone)]
struct Plaintext;

impl HttpService for Plaintext {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        if req.path() == "/plaintext" {
            rsp.header("Content-Type: text/plain");
            rsp.body("Hello, World!");
        } else {
            rsp.status_code(404, "Not Found");
        }
        Ok(())
    }
}

fn main() {
    let Args { workers, addr } = Args::from_env();
    may::config().set_workers(workers);
    let server = HttpServer(Plaintext).start(&addr).expect("bind");
    eprintln!("may_minihttp: {addr}, {workers} workers");
    server.wait();
}
