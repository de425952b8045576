//! `spindle::net`: TCP and UDP sockets whose waits park the fiber.
//!
//! Everything runs over loopback with port 0. Timing assertions are one-sided
//! ("at least the timeout", "well under a minute") so that the tests hold on
//! a loaded machine and under qemu-user, which emulates 10-30x slower.
//!
//! Tests that change process-wide state the others must not see (the signal
//! disposition of `SIGPIPE`, a lowered `RLIMIT_NOFILE`) re-run this test
//! binary as a child process on one test, selected by `--exact`, with
//! [`CASE`] naming what the child does; the child prints [`DONE`] when its
//! body ran to the end, and the parent checks that and the exit status.
//!
//! A [`Watchdog`] guards every test: a wake-up the reactor loses would hang
//! the run, so instead the process aborts with the test's name.
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, ErrorKind, IoSlice, Read, Write};
use std::mem::size_of;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use spindle::net::{TcpListener, TcpStream, UdpSocket};
use spindle::{JoinError, TaskState};

#[path = "../common/mod.rs"]
mod common;

use common::child::text;
use common::*;

/// Environment variable telling a child which case to run.
const CASE: &str = "SPINDLE_NET_TEST_CASE";
/// What a child prints when its body finished.
const DONE: &str = "SPINDLE_NET_CHILD_DONE";

mod cancel;
mod errors;
mod runtimes;
mod tcp;
mod timeouts;
mod udp;

// ---- harness ----------------------------------------------------------------

/// Re-runs test `name` of this binary in a child with `CASE=case`.
fn run_child(name: &str, case: &str) -> Output {
    child::run_child(CASE, name, case)
}

/// Whether this process is a child running `case`.
fn is_child(case: &str) -> bool {
    child::is_child(CASE, case)
}

/// Asserts that the child exited 0 after its body ran to the end (a filter
/// that matched no test would exit 0 too).
fn assert_child_done(out: &Output, case: &str) {
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(DONE),
        "child {case} did not finish:\n{}",
        text(out)
    );
}

/// Sets a flag when dropped: proves that a cancelled fiber's stack unwound.
struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn nofile_limit() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_nofile_limit(lim: &libc::rlimit) -> io::Result<()> {
    // SAFETY: `lim` is a valid rlimit, read by the kernel.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the soft fd limit to the hard one, and the hard one to `need` if
/// it is lower (which needs root, as in CI). Raising is harmless to the
/// tests that run beside this one.
fn raise_nofile_limit(need: u64) {
    let mut lim = nofile_limit();
    if lim.rlim_max < need {
        lim.rlim_max = need;
    }
    lim.rlim_cur = lim.rlim_max;
    if let Err(e) = set_nofile_limit(&lim) {
        panic!(
            "this test needs {need} fds; RLIMIT_NOFILE is {:?} and raising it failed ({e}): \
             run as root or raise `ulimit -Hn`",
            nofile_limit().rlim_max
        );
    }
}

/// A listening socket whose accept queue is full, so the kernel drops the
/// SYN of any further connect: such a connect neither completes nor fails
/// until the client gives up.
struct FullQueue {
    addr: SocketAddr,
    _listener: OwnedFd,
    /// The connections that fill the queue; never accepted.
    _queued: Vec<std::net::TcpStream>,
}

/// Builds a [`FullQueue`]: a libc socket on 127.0.0.1:0 with `listen(fd,
/// 0)`, then std connects until one times out. That probe proves the queue
/// full: a kernel that kept completing connects would fail here, with a
/// message, rather than make the tests that use it pass for nothing.
fn full_queue_listener() -> FullQueue {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let listener = unsafe { OwnedFd::from_raw_fd(fd) };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `sin` is a valid sockaddr_in of the length given.
    let r = unsafe { libc::bind(fd, &sin as *const _ as *const libc::sockaddr, len) };
    assert_eq!(r, 0, "bind: {}", io::Error::last_os_error());
    // SAFETY: plain syscall on an fd we own.
    assert_eq!(unsafe { libc::listen(fd, 0) }, 0);
    // A std listener borrowed for `local_addr` only; `into_raw_fd` hands the
    // fd back without closing it.
    // SAFETY: `fd` is an open listening socket; ownership returns at once.
    let std_listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    let addr = std_listener.local_addr().unwrap();
    let _ = std_listener.into_raw_fd();
    let mut queued = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => queued.push(s),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                return FullQueue {
                    addr,
                    _listener: listener,
                    _queued: queued,
                }
            }
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the kernel completed 16 connects to a listen(fd, 0) socket never accepted from");
}
