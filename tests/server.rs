//! `spindle::net::Server`: one port served from every worker, both ways
//! (`SO_REUSEPORT` listeners and accept + hand-off): connections reach
//! every worker, shutdown closes every listener, and bind and accept
//! errors are clear.

mod common;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::child::{is_child, run_child, text};
use spindle::net::{Server, Spread, TcpStream};
use spindle::Runtime;

const WORKERS: usize = 3;

/// Opens `n` connections to a server whose handler writes the number of
/// the worker it runs on and keeps the connection until the client
/// closes it; returns how many landed on each worker. All `n` are open at
/// once, so the hand-off sees its workers' load grow.
fn spread_of(spread: Spread, n: usize) -> Vec<usize> {
    let rt = Runtime::builder().workers(WORKERS).build().unwrap();
    rt.block_on(|| {
        let server = Server::builder()
            .spread(spread)
            .bind("127.0.0.1:0", |mut conn| {
                let w = spindle::current_worker() as u8;
                if conn.write_all(&[w]).is_ok() {
                    let mut rest = Vec::new();
                    let _ = conn.read_to_end(&mut rest);
                }
            })
            .unwrap();
        assert_eq!(server.spread(), spread);
        let expected_listeners = match spread {
            Spread::ReusePort => WORKERS,
            Spread::HandOff => 1,
        };
        assert_eq!(server.listeners(), expected_listeners);
        let mut counts = vec![0; WORKERS];
        let mut open = Vec::new();
        for _ in 0..n {
            let mut c = TcpStream::connect(server.local_addr()).unwrap();
            let mut w = [0u8];
            c.read_exact(&mut w).unwrap();
            counts[w[0] as usize] += 1;
            open.push(c);
        }
        server.shutdown();
        counts
    })
}

#[test]
fn reuseport_connections_arrive_on_every_worker() {
    let _w = common::watchdog("reuseport_connections_arrive_on_every_worker");
    let counts = spread_of(Spread::ReusePort, 150);
    // The kernel hashes each connection's addresses: 50 each on average;
    // 15 is more than four standard deviations below.
    assert!(counts.iter().all(|&c| c >= 15), "{counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), 150);
}

#[test]
fn hand_off_connections_arrive_on_every_worker() {
    let _w = common::watchdog("hand_off_connections_arrive_on_every_worker");
    let counts = spread_of(Spread::HandOff, 150);
    // Placed by live fibers: worker 0 also runs the main fiber and the
    // acceptor, so it takes two fewer; the others take turns.
    assert!(counts.iter().all(|&c| c >= 45), "{counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), 150);
}

/// After `shutdown`, nothing listens on the port any more: a connect is
/// refused, and a plain bind (no `SO_REUSEPORT`, which any listener of the
/// group left behind would refuse) succeeds.
fn shutdown_closes_every_listener(spread: Spread) {
    let rt = Runtime::builder().workers(WORKERS).build().unwrap();
    rt.block_on(|| {
        let server = Server::builder()
            .spread(spread)
            .bind("127.0.0.1:0", |mut conn| {
                let _ = conn.write_all(b"x");
            })
            .unwrap();
        let addr = server.local_addr();
        for _ in 0..10 {
            let mut b = [0u8];
            TcpStream::connect(addr)
                .unwrap()
                .read_exact(&mut b)
                .unwrap();
        }
        server.shutdown();
        let e = TcpStream::connect(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        std::net::TcpListener::bind(addr).expect("no listener is left on the port");
    });
}

#[test]
fn reuseport_shutdown_closes_every_listener() {
    let _w = common::watchdog("reuseport_shutdown_closes_every_listener");
    shutdown_closes_every_listener(Spread::ReusePort);
}

#[test]
fn hand_off_shutdown_closes_every_listener() {
    let _w = common::watchdog("hand_off_shutdown_closes_every_listener");
    shutdown_closes_every_listener(Spread::HandOff);
}

/// Dropping the server cancels its acceptors without waiting: the port is
/// free soon after.
#[test]
fn dropping_the_server_frees_the_port() {
    let _w = common::watchdog("dropping_the_server_frees_the_port");
    let rt = Runtime::builder().workers(WORKERS).build().unwrap();
    rt.block_on(|| {
        let server = Server::bind("127.0.0.1:0", |_| {}).unwrap();
        let addr = server.local_addr();
        drop(server);
        let start = Instant::now();
        while std::net::TcpListener::bind(addr).is_err() {
            assert!(start.elapsed() < common::LONG, "the port stays taken");
            spindle::sleep(Duration::from_millis(1));
        }
    });
}

/// A port held by a plain listener: both ways fail with `AddrInUse`, and
/// the message names the address (and the worker, for `SO_REUSEPORT`).
#[test]
fn address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        for (spread, how) in [
            (Spread::ReusePort, " with SO_REUSEPORT for worker 0"),
            (Spread::HandOff, ""),
        ] {
            let e = Server::builder()
                .spread(spread)
                .bind(addr, |_| {})
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
            let msg = e.to_string();
            let want = format!("spindle::net::Server: cannot bind {addr}{how}: ");
            assert!(msg.starts_with(&want), "{msg}");
        }
    });
}

/// One server owns the port's `SO_REUSEPORT` group; a second server of
/// the same process joins it (the documented trade), while a plain
/// listener cannot.
#[test]
fn reuseport_listeners_share_the_port() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let a = Server::bind("127.0.0.1:0", |_| {}).unwrap();
        let b = Server::bind(a.local_addr(), |_| {}).unwrap();
        assert_eq!(a.local_addr(), b.local_addr());
        let e = std::net::TcpListener::bind(a.local_addr()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    });
}

const CHILD: &str = "SPINDLE_SERVER_CHILD";

/// Out of fds, the acceptor reports `EMFILE` to the error hook and backs
/// off; the connection waits in the kernel's queue and is served once
/// fds are free. Runs in a child process: it lowers the fd limit and uses
/// every fd, which the other tests must not see.
#[test]
fn emfile_is_reported_and_the_connection_served_later() {
    const NAME: &str = "emfile_is_reported_and_the_connection_served_later";
    if !is_child(CHILD, "emfile") {
        let out = run_child(CHILD, NAME, "emfile");
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("served after EMFILE"), "{}", text(&out));
        return;
    }
    for spread in [Spread::ReusePort, Spread::HandOff] {
        emfile_case(spread);
    }
    println!("served after EMFILE");
}

fn emfile_case(spread: Spread) {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let errors = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = Arc::clone(&errors);
        let server = Server::builder()
            .spread(spread)
            .on_error(move |e| seen.lock().unwrap().push(e.to_string()))
            .bind("127.0.0.1:0", |mut conn| {
                let _ = conn.write_all(b"served");
            })
            .unwrap();
        let addr: SocketAddr = server.local_addr();
        let limit = libc::rlimit {
            rlim_cur: 256,
            rlim_max: current_hard_limit(),
        };
        // SAFETY: a plain syscall with a valid struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        // The client's socket first, then every fd left, then connect: the
        // server's accept has none. (Freeing one fd for the client after
        // the hoard let another thread of the process take it now and then
        // - 1 run in 30 - and the client's connect failed with EMFILE.)
        // SAFETY: a plain syscall; the fd it returns is owned right away.
        let sock =
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(sock >= 0, "{}", io::Error::last_os_error());
        // SAFETY: `sock` is a fresh fd that nothing else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(sock) };
        let probe = File::open("/dev/null").unwrap();
        let mut hoard: Vec<File> = Vec::new();
        while let Ok(f) = probe.try_clone() {
            hoard.push(f);
        }
        let SocketAddr::V4(v4) = addr else {
            panic!("bound to 127.0.0.1")
        };
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: a valid socket and a valid address of the given length.
        // Blocking, but on loopback the kernel completes the handshake
        // into the listener's queue at once, accepted or not.
        let r = unsafe {
            libc::connect(
                sock.as_raw_fd(),
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        let mut client = TcpStream::from_std(std::net::TcpStream::from(sock)).unwrap();
        let start = Instant::now();
        while errors.lock().unwrap().is_empty() {
            assert!(start.elapsed() < common::LONG, "no EMFILE reported");
            spindle::sleep(Duration::from_millis(1));
        }
        drop(hoard);
        client.set_read_timeout(Some(common::LONG)).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "served");
        let errors = errors.lock().unwrap();
        let first = &errors[0];
        assert!(
            first.starts_with(&format!("spindle::net::Server on {addr}: accept failed: ")),
            "{first}"
        );
        assert!(first.contains("os error 24"), "{first}");
        assert!(first.ends_with("retrying in 5ms"), "{first}");
        drop(probe);
        server.shutdown();
    });
}

fn current_hard_limit() -> libc::rlim_t {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a plain syscall filling a valid struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) }, 0);
    l.rlim_max
}
