//! What the I/O test binaries (`tests/io.rs`, `tests/net/`) share: a
//! watchdog that turns a lost wake-up into an abort naming the test, byte
//! patterns that show a lost or misplaced byte, and fiber-state helpers.
//! Included with `mod common;` (or `#[path]`), so every binary that uses it
//! compiles its own copy; not every binary uses every item.
#![allow(dead_code)]

pub mod child;
pub mod dump;

use std::io;
use std::os::fd::RawFd;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use spindle::{TaskId, TaskState};

/// The upper bound of every "roughly this long" assertion, and the timeout
/// that turns a wait which should end at once into a failure.
pub const LONG: Duration = Duration::from_secs(20);

/// Aborts the process if the test it guards runs longer than five minutes:
/// a wake-up the reactor loses would hang the run instead.
pub struct Watchdog {
    _disarm_on_drop: mpsc::Sender<()>,
}

/// Starts a [`Watchdog`] for the test named `test`; dropping it disarms it.
pub fn watchdog(test: &'static str) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let limit = Duration::from_secs(300);
        if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("{test}: still running after {limit:?}; a fiber never woke. Aborting.");
            std::process::abort();
        }
    });
    Watchdog {
        _disarm_on_drop: tx,
    }
}

/// Asserts that a wait with a timeout of `timeout` that took `waited` ended
/// because of it: not before it, and not much later (within [`LONG`]).
#[track_caller]
pub fn assert_waited_about(waited: Duration, timeout: Duration) {
    assert!(
        waited >= timeout,
        "timed out after {waited:?}, before {timeout:?}"
    );
    assert!(waited < timeout + LONG, "timed out only after {waited:?}");
}

/// The byte at `offset` of stream number `seed`: cheap to compute, and a
/// lost, repeated or misplaced byte, or bytes of another stream, show.
pub fn pattern(seed: usize, offset: usize) -> u8 {
    (offset.wrapping_mul(7) ^ (offset >> 8) ^ seed.wrapping_mul(131)) as u8
}

/// The first `len` bytes of stream `seed`.
pub fn patterned(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| pattern(seed, i)).collect()
}

/// Checks `buf`, which holds stream `seed` from `offset` on.
pub fn check_pattern(seed: usize, offset: usize, buf: &[u8]) {
    if let Some(i) = (0..buf.len()).find(|&i| buf[i] != pattern(seed, offset + i)) {
        panic!(
            "stream {seed}: byte {} is {:#04x}, expected {:#04x}",
            offset + i,
            buf[i],
            pattern(seed, offset + i)
        );
    }
}

/// The state of fiber `id`, if it is alive.
pub fn state_of(id: TaskId) -> Option<TaskState> {
    spindle::tasks()
        .into_iter()
        .find(|t| t.id() == id)
        .map(|t| t.state())
}

/// Sleeps in small steps until fiber `id` is parked in an I/O wait.
///
/// # Panics
///
/// If it finishes instead, or does not park within [`LONG`].
pub fn wait_for_io_park(id: TaskId) {
    let start = Instant::now();
    loop {
        match state_of(id) {
            Some(TaskState::WaitingIo) => return,
            None => panic!("fiber {id} finished instead of parking in I/O"),
            Some(s) => assert!(start.elapsed() < LONG, "fiber {id} never parked ({s})"),
        }
        spindle::sleep(Duration::from_millis(1));
    }
}

/// The file status flags of `fd` (`F_GETFL`).
pub fn fd_flags(fd: RawFd) -> libc::c_int {
    // SAFETY: fcntl on an fd number has no memory effects; at worst EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL: {}", io::Error::last_os_error());
    flags
}

/// Whether `fd` is in non-blocking mode.
pub fn is_nonblocking(fd: RawFd) -> bool {
    fd_flags(fd) & libc::O_NONBLOCK != 0
}
