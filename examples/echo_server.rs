//! An echo server: one fiber per connection, every fiber on one thread.
//!
//! ```text
//! cargo run --release --example echo_server -- [ADDR]        # default 127.0.0.1:7007
//! cargo run --release --example echo_client -- [ADDR] [CONNECTIONS] [MESSAGES]
//! ```
//!
//! Each connection's fiber reads what arrives and writes it back until the
//! peer closes. A `read` with nothing to read parks that fiber; the
//! thread's other fibers keep running. When the process is out of file
//! descriptors, `accept` fails with `EMFILE`: the server says so, waits a
//! little, and goes on serving (the connection stays queued in the kernel
//! until then).

use std::time::Duration;

use spindle::net::TcpListener;

#[path = "net_demos/mod.rs"]
mod net_demos;
#[path = "runtime_demos/mod.rs"]
mod runtime_demos;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7007".into());
    spindle::run(move || {
        let listener = match TcpListener::bind(&addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("echo_server: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!(
            "echo server listening on {}",
            listener.local_addr().unwrap()
        );
        let mut served = 0u64;
        loop {
            match listener.accept() {
                Ok((conn, peer)) => {
                    served += 1;
                    let id = served;
                    spindle::spawn(move || match net_demos::echo(conn) {
                        Ok(bytes) => println!("connection {id} from {peer}: {bytes} bytes echoed"),
                        Err(e) => println!("connection {id} from {peer}: {e}"),
                    });
                }
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                    eprintln!("echo_server: out of file descriptors; pausing accept for 10 ms");
                    spindle::sleep(Duration::from_millis(10));
                }
                Err(e) => eprintln!("echo_server: accept: {e}"),
            }
        }
    })
}
