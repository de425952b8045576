//! `spindle::process`: children spawned with `Command`, whose pipes and
//! waits park the fiber, and which are always reaped.
//!
//! The waits run on a pidfd where the kernel has `pidfd_open`, on a helper
//! thread otherwise; [`fallback_path_passes_the_suite`] re-runs every other
//! test of this binary with `SPINDLE_NO_PIDFD` set, so both paths are
//! tested on every machine. Zombies are looked for in `/proc`.
#![warn(clippy::undocumented_unsafe_blocks)]

mod common;

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{assert_waited_about, state_of, watchdog, LONG};
use spindle::process::{Child, Command, Stdio};
use spindle::{JoinError, TaskId, TaskState};

/// Whether `pid` is a zombie child of this process.
fn is_zombie_child(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')').expect("stat has a comm") + 2..];
    let mut fields = rest.split(' ');
    let (state, ppid) = (fields.next(), fields.next());
    state == Some("Z") && ppid == Some(&std::process::id().to_string())
}

/// Whether `pid` is still a child of this process (running or zombie).
fn is_our_child(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let rest = &stat[stat.rfind(')').expect("stat has a comm") + 2..];
    rest.split(' ').nth(1) == Some(&std::process::id().to_string())
}

/// Whether this run forces the helper-thread fallback.
fn fallback_forced() -> bool {
    std::env::var_os("SPINDLE_NO_PIDFD").is_some()
}

/// Whether this process can have a pidfd at all: `pidfd_open` on itself
/// works (not under valgrind 3.19, which does not know the system call,
/// nor on kernels before 5.3).
fn pidfd_supported() -> bool {
    // SAFETY: pidfd_open takes a pid and flags; the fd it may return is
    // closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    unsafe { libc::close(fd as libc::c_int) };
    true
}

/// Whether a failed `exec` in the child may show as a child exiting 127
/// instead of an error from `spawn`: under qemu-user (aarch64 here) and
/// under valgrind, which does not run std's `clone3`/`posix_spawn` path and
/// so loses the exec error pipe.
fn exec_errors_may_arrive_late() -> bool {
    cfg!(target_arch = "aarch64")
        || std::fs::read_to_string("/proc/self/maps").is_ok_and(|m| m.contains("vgpreload"))
}

/// Sleeps in small steps until fiber `id` parks in a wait (an I/O wait on
/// the pidfd path, a blocking-helper wait on the fallback).
fn wait_for_park(id: TaskId) {
    let start = Instant::now();
    loop {
        match state_of(id) {
            Some(TaskState::WaitingIo | TaskState::WaitingBlocking) => return,
            None => panic!("fiber {id} finished instead of parking"),
            Some(s) => assert!(start.elapsed() < LONG, "fiber {id} never parked ({s})"),
        }
        spindle::sleep(Duration::from_millis(1));
    }
}

struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Where the fallback is forced, the children really use it (no pidfd).
#[test]
fn the_forced_fallback_uses_no_pidfd() {
    spindle::run(|| {
        let mut child = Command::new("true").spawn().unwrap();
        let shown = format!("{child:?}");
        let expect_fallback = fallback_forced() || !pidfd_supported();
        assert_eq!(shown.contains("pidfd: None"), expect_fallback, "{shown}");
        assert!(child.wait().unwrap().success());
    });
}

/// `output` collects stdout and stderr apart and reports the exit code;
/// `status` reports it with stdio inherited; the environment and working
/// directory settings reach the child.
#[test]
fn output_and_status_report_what_the_child_did() {
    let _w = watchdog("output_and_status_report_what_the_child_did");
    spindle::run(|| {
        let out = Command::new("sh")
            .arg("-c")
            .arg("echo \"$A/$B\"; pwd; echo to-err >&2; exit 42")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("A", "one")
            .env("B", "two")
            .env_remove("B")
            .current_dir("/")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "one/\n/\n");
        assert_eq!(out.stderr, b"to-err\n");
        assert_eq!(out.status.code(), Some(42));

        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        assert_eq!(cmd.status().unwrap().code(), Some(3));
        // output() left the defaults of status() and spawn() as they were.
        assert_eq!(cmd.status().unwrap().code(), Some(3));
    });
}

/// A program that does not exist is `NotFound`, from `spawn`. (Under
/// qemu-user, std's report of the failed `exec` does not survive the
/// emulated `vfork`: the child then exits with 127, as a shell's would.)
#[test]
fn a_missing_program_is_not_found() {
    spindle::run(
        || match Command::new("/nonexistent/spindle-no-such-program").spawn() {
            Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound),
            Ok(mut child) => {
                assert!(exec_errors_may_arrive_late(), "spawned {child:?}");
                assert_eq!(child.wait().unwrap().code(), Some(127));
            }
        },
    );
}

/// 100 children at once on one thread: every one is alive together
/// (each waits for its line on stdin, written only once all have
/// started), answers on stdout and stderr, exits with its own code, and is
/// reaped: none is left a zombie.
#[test]
fn a_hundred_concurrent_children_on_one_worker() {
    let _w = watchdog("a_hundred_concurrent_children_on_one_worker");
    let pids = spindle::run(|| {
        let mut children: Vec<Child> = (0..100)
            .map(|i| {
                Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "read line; echo \"$line from {i}\"; echo err{i} >&2; exit {}",
                        i % 7
                    ))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let pids: Vec<u32> = children.iter().map(Child::id).collect();
        // All 100 are running now, each blocked on its stdin.
        for c in &mut children {
            assert!(c.try_wait().unwrap().is_none());
        }
        let handles: Vec<_> = children
            .into_iter()
            .enumerate()
            .map(|(i, mut child)| {
                spindle::spawn(move || {
                    let mut stdin = child.stdin.take().unwrap();
                    stdin.write_all(format!("hello {i}\n").as_bytes()).unwrap();
                    drop(stdin);
                    child.wait_with_output().unwrap()
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let out = h.join().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("hello {i} from {i}\n")
            );
            assert_eq!(String::from_utf8_lossy(&out.stderr), format!("err{i}\n"));
            assert_eq!(out.status.code(), Some(i as i32 % 7));
        }
        pids
    });
    for pid in pids {
        assert!(!is_our_child(pid), "child {pid} was not reaped");
    }
}

/// `wait_timeout` gives `None` after about its timeout while the child
/// runs; `kill` then ends it, and `wait` reports the signal. `kill` after
/// the reap is `Ok`.
#[test]
fn wait_timeout_times_out_and_kill_ends_the_child() {
    let _w = watchdog("wait_timeout_times_out_and_kill_ends_the_child");
    spindle::run(|| {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let timeout = Duration::from_millis(100);
        let start = Instant::now();
        assert_eq!(child.wait_timeout(timeout).unwrap(), None);
        assert_waited_about(start.elapsed(), timeout);
        assert_eq!(child.try_wait().unwrap(), None);
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(child.try_wait().unwrap(), Some(status));
        assert_eq!(
            child.wait_timeout(Duration::from_millis(1)).unwrap(),
            Some(status)
        );
        child.kill().unwrap();
        assert!(!is_our_child(child.id()));
    });
}

/// While one fiber waits for a child, the thread's other fibers run: a
/// wait parks the fiber, it does not block the thread.
#[test]
fn a_wait_parks_only_its_fiber() {
    let _w = watchdog("a_wait_parks_only_its_fiber");
    spindle::run(|| {
        let mut child = Command::new("sleep").arg("0.3").spawn().unwrap();
        let ticks = Rc::new(Cell::new(0u32));
        let t = Rc::clone(&ticks);
        let ticker = spindle::spawn(move || loop {
            spindle::sleep(Duration::from_millis(5));
            t.set(t.get() + 1);
        });
        assert!(child.wait().unwrap().success());
        assert!(ticks.get() >= 3, "the ticker ran {} times", ticks.get());
        ticker.cancel();
    });
}

/// A fiber cancelled while it waits for a child unwinds (its destructors
/// run), and the `Child` it borrowed stays consistent: still running, then
/// killed and waited by another fiber, and reaped.
#[test]
fn a_cancelled_wait_unwinds_and_the_child_stays_usable() {
    let _w = watchdog("a_cancelled_wait_unwinds_and_the_child_stays_usable");
    spindle::run(|| {
        let child = Rc::new(RefCell::new(
            Command::new("sleep").arg("30").spawn().unwrap(),
        ));
        let dropped = Rc::new(Cell::new(false));
        let h = spindle::spawn({
            let (child, dropped) = (Rc::clone(&child), Rc::clone(&dropped));
            move || {
                let _guard = SetOnDrop(dropped);
                child.borrow_mut().wait()
            }
        });
        wait_for_park(h.id());
        h.cancel();
        assert!(matches!(h.join(), Err(JoinError::Cancelled)));
        assert!(dropped.get(), "the cancelled fiber did not unwind");
        let mut child = child.borrow_mut();
        assert_eq!(child.try_wait().unwrap(), None);
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert!(!is_our_child(child.id()));
    });
}

/// A fiber cancelled while it reads a child's stdout unwinds; the pipe
/// keeps every byte for the next read.
#[test]
fn a_cancelled_pipe_read_unwinds_and_loses_nothing() {
    let _w = watchdog("a_cancelled_pipe_read_unwinds_and_loses_nothing");
    spindle::run(|| {
        let mut child = Command::new("sh")
            .args(["-c", "read x; echo \"got $x\""])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Rc::new(RefCell::new(child.stdout.take().unwrap()));
        let h = spindle::spawn({
            let stdout = Rc::clone(&stdout);
            move || stdout.borrow_mut().read(&mut [0; 16])
        });
        common::wait_for_io_park(h.id());
        h.cancel();
        assert!(matches!(h.join(), Err(JoinError::Cancelled)));
        child.stdin.as_mut().unwrap().write_all(b"it\n").unwrap();
        let mut text = String::new();
        stdout.borrow_mut().read_to_string(&mut text).unwrap();
        assert_eq!(text, "got it\n");
        assert!(child.wait().unwrap().success());
    });
}

/// A read timeout on a child's stdout gives `TimedOut` after about that
/// long, and the pipe stays usable.
#[test]
fn a_pipe_read_timeout_gives_timed_out() {
    let _w = watchdog("a_pipe_read_timeout_gives_timed_out");
    spindle::run(|| {
        let mut child = Command::new("sh")
            .args(["-c", "read x; echo $x"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let timeout = Duration::from_millis(100);
        stdout.set_read_timeout(Some(timeout)).unwrap();
        assert_eq!(stdout.read_timeout(), Some(timeout));
        let start = Instant::now();
        let e = stdout.read(&mut [0; 8]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert_waited_about(start.elapsed(), timeout);
        assert_eq!(
            stdout
                .set_read_timeout(Some(Duration::ZERO))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        child.stdin.as_mut().unwrap().write_all(b"late\n").unwrap();
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        assert_eq!(text, "late\n");
        child.wait().unwrap();
    });
}

/// Writing more than a pipe holds parks the writer until the child reads;
/// the child sees every byte, and end of file when stdin is dropped.
#[test]
fn a_large_write_to_stdin_parks_until_the_child_reads() {
    let _w = watchdog("a_large_write_to_stdin_parks_until_the_child_reads");
    spindle::run(|| {
        let child = Command::new("sh")
            .args(["-c", "sleep 0.1; wc -c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let child = Rc::new(RefCell::new(child));
        let mut stdin = child.borrow_mut().stdin.take().unwrap();
        let data = common::patterned(1, 1 << 20);
        let writer = spindle::spawn(move || stdin.write_all(&data));
        common::wait_for_io_park(writer.id());
        writer.join().unwrap().unwrap();
        let child = Rc::try_unwrap(child).ok().unwrap().into_inner();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1048576");
    });
}

/// A child dropped before it exits is not killed, and is reaped in the
/// background once it exits; one dropped after it exited is reaped at
/// once. Neither stays a zombie.
#[test]
fn a_dropped_child_is_reaped_and_leaves_no_zombie() {
    let _w = watchdog("a_dropped_child_is_reaped_and_leaves_no_zombie");
    spindle::run(|| {
        let running = Command::new("sleep").arg("0.2").spawn().unwrap();
        let running_pid = running.id();
        drop(running);
        assert!(is_our_child(running_pid), "the dropped child was killed");

        let exited = Command::new("true").spawn().unwrap();
        let exited_pid = exited.id();
        let start = Instant::now();
        while !is_zombie_child(exited_pid) {
            assert!(start.elapsed() < LONG, "`true` never exited");
            spindle::sleep(Duration::from_millis(5));
        }
        drop(exited);
        assert!(
            !is_our_child(exited_pid),
            "an exited child dropped stays a zombie"
        );

        let start = Instant::now();
        while is_our_child(running_pid) {
            assert!(start.elapsed() < LONG, "the dropped child was never reaped");
            spindle::sleep(Duration::from_millis(10));
        }
    });
}

/// Outside a fiber, waits and `output` block the thread and work as std's.
#[test]
fn outside_a_fiber_everything_blocks_like_std() {
    let _w = watchdog("outside_a_fiber_everything_blocks_like_std");
    let out = Command::new("sh")
        .args(["-c", "echo out; echo err >&2; exit 5"])
        .output()
        .unwrap();
    assert_eq!(
        (&out.stdout[..], &out.stderr[..]),
        (&b"out\n"[..], &b"err\n"[..])
    );
    assert_eq!(out.status.code(), Some(5));
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

/// Every other test of this binary, again with `SPINDLE_NO_PIDFD` set: the
/// helper-thread fallback passes them too.
#[test]
fn fallback_path_passes_the_suite() {
    if fallback_forced() {
        return; // the re-run itself
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--skip", "fallback_path_passes_the_suite"])
        .env("SPINDLE_NO_PIDFD", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::child::text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("test result: ok"), "{stdout}");
}

/// The handles are `Send` (a child may be handed to another thread's
/// runtime and waited there); `Command` is `Send` and `Sync`, as std's.
#[test]
fn the_handles_are_send() {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}
    assert_send::<Child>();
    assert_send::<spindle::process::ChildStdin>();
    assert_send::<spindle::process::ChildStdout>();
    assert_send::<spindle::process::ChildStderr>();
    assert_send::<Command>();
    assert_sync::<Command>();
    let mut child =
        std::thread::spawn(|| Command::new("sh").args(["-c", "exit 9"]).spawn().unwrap())
            .join()
            .unwrap();
    spindle::run(move || assert_eq!(child.wait().unwrap().code(), Some(9)));
}
