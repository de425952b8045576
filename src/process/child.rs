//! [`Child`]: a running process that spindle reaps itself, by pidfd or a
//! helper thread (see the [module docs](super)), and the reaper thread
//! that takes the children dropped before they exited.

use std::fmt;
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::stdio::{ChildStderr, ChildStdin, ChildStdout};
use super::{ExitStatus, Output};
use crate::io::deadline;
use crate::runtime::io_source::{Interest, IoSource};
use crate::runtime::wait::Parker;

/// A spawned child process (std's `Child`), whose pipes park the fiber and
/// whose waits park it too.
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use std::time::Duration;
/// use spindle::process::{Command, Stdio};
///
/// spindle::run(|| -> std::io::Result<()> {
///     let mut child = Command::new("sh").args(["-c", "sleep 0.05; echo done"])
///         .stdout(Stdio::piped())
///         .spawn()?;
///     // Still running: try_wait says so, and a short wait_timeout gives up.
///     assert!(child.try_wait()?.is_none());
///     assert!(child.wait_timeout(Duration::from_millis(1))?.is_none());
///     let mut out = String::new();
///     child.stdout.as_mut().unwrap().read_to_string(&mut out)?; // parks
///     assert_eq!(out, "done\n");
///     assert!(child.wait()?.success());
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Panics
///
/// Every wait is a cancellation point. A cancelled wait unwinds and leaves
/// the `Child` as it was: wait again, kill it, or drop it.
///
/// # Dropping
///
/// Closes the pipes still held; does not kill the process. If it has not
/// been reaped, it is reaped now if it has exited, or by the background
/// reaper once it does: no zombie is left (see the
/// [module docs](super#dropping-a-child)).
///
/// # `Send`
///
/// `Send`: a child may be handed to another thread's runtime. Not `Sync`.
pub struct Child {
    /// The write end of the child's stdin, if it was [`Stdio::piped`](super::Stdio::piped).
    pub stdin: Option<ChildStdin>,
    /// The read end of the child's stdout, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The read end of the child's stderr, if it was piped.
    pub stderr: Option<ChildStderr>,
    pid: libc::pid_t,
    /// Set once the child is reaped; the pid may then belong to another
    /// process, and is never used again.
    status: Option<ExitStatus>,
    /// `None` on the fallback path.
    pidfd: Option<PidFd>,
}

/// A pidfd and its reactor link; the source drops first (see `IoSource`).
struct PidFd {
    source: IoSource,
    _fd: OwnedFd,
}

impl Child {
    /// Takes over a child std has just spawned: its pipes become
    /// non-blocking, and its pid is spindle's to reap.
    pub(super) fn from_std(mut child: process::Child) -> io::Result<Child> {
        let pid = child.id() as libc::pid_t;
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        // std's Child has no Drop of its own: dropping it closes nothing
        // else and reaps nothing.
        drop(child);
        let mut this = Child {
            stdin: None,
            stdout: None,
            stderr: None,
            pid,
            status: None,
            pidfd: open_pidfd(pid),
        };
        let pipes = (|| -> io::Result<()> {
            this.stdin = stdin.map(ChildStdin::new).transpose()?;
            this.stdout = stdout.map(ChildStdout::new).transpose()?;
            this.stderr = stderr.map(ChildStderr::new).transpose()?;
            Ok(())
        })();
        match pipes {
            Ok(()) => Ok(this),
            Err(e) => {
                // A child whose pipes cannot be used is of no use: kill it;
                // the drop reaps it (or leaves it to the reaper).
                let _ = this.kill();
                Err(e)
            }
        }
    }

    /// The child's process id.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| {
    ///     let mut child = spindle::process::Command::new("true").spawn().unwrap();
    ///     assert!(child.id() > 0);
    ///     child.wait().unwrap();
    /// });
    /// ```
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Sends `SIGKILL` to the child if it has not been reaped yet; after
    /// that, does nothing and returns `Ok` (the pid may belong to another
    /// process by then). Does not wait: [`wait`](Self::wait) then reports
    /// the signal.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use spindle::process::Command;
    ///
    /// spindle::run(|| -> std::io::Result<()> {
    ///     let mut child = Command::new("sleep").arg("10").spawn()?;
    ///     child.kill()?;
    ///     assert_eq!(child.wait()?.signal(), Some(libc::SIGKILL));
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// What `kill(2)` returns.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // SAFETY: plain syscall. The pid is ours and not reaped, so it
        // names this child (a zombie at worst), never a reused pid.
        if unsafe { libc::kill(self.pid, libc::SIGKILL) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The exit status if the child has exited (reaping it), `None` if it
    /// is still running. Never waits.
    ///
    /// # Errors
    ///
    /// What `waitpid(2)` returns.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = reap(self.pid)?;
        }
        Ok(self.status)
    }

    /// Closes the child's stdin (as std does, so a child reading it sees
    /// the end), then parks the fiber until the child exits, and reaps it.
    ///
    /// # Panics
    ///
    /// As a cancellation point (the `Child` stays usable).
    ///
    /// # Errors
    ///
    /// What `waitpid(2)` returns; [`io::ErrorKind::Interrupted`] if the
    /// runtime shuts down while the fiber, already unwinding, would wait.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let status = self.wait_until(None)?;
        Ok(status.expect("a wait without a deadline ends with the exit"))
    }

    /// Parks the fiber until the child exits (`Some(status)`, reaped) or
    /// `timeout` passes (`None`: still running). Unlike
    /// [`wait`](Self::wait), leaves stdin open.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::process::Command;
    ///
    /// spindle::run(|| -> std::io::Result<()> {
    ///     let mut child = Command::new("sleep").arg("10").spawn()?;
    ///     assert_eq!(child.wait_timeout(Duration::from_millis(20))?, None);
    ///     child.kill()?;
    ///     assert!(child.wait_timeout(Duration::from_secs(10))?.is_some());
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        // A deadline too far to represent waits for ever.
        self.wait_until(deadline(Some(timeout)))
    }

    /// Closes stdin, collects stdout and stderr (whichever are piped) until
    /// their ends, and waits (std's `wait_with_output`). The two pipes are
    /// read at the same time (the second by a helper fiber, or by a helper
    /// thread outside a fiber), so a child that fills one while the other
    /// is read cannot deadlock.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::process::{Command, Stdio};
    ///
    /// spindle::run(|| -> std::io::Result<()> {
    ///     let child = Command::new("sh").args(["-c", "echo out; echo err >&2"])
    ///         .stdout(Stdio::piped()).stderr(Stdio::piped())
    ///         .spawn()?;
    ///     let out = child.wait_with_output()?;
    ///     assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait); the helper fiber is cancelled with it.
    ///
    /// # Errors
    ///
    /// What reading the pipes or waiting returns.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = read_both(self.stdout.take(), self.stderr.take())?;
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Waits until the child exits (reaping it) or `deadline` passes
    /// (`None`).
    fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        let pid = self.pid;
        let r = match &self.pidfd {
            Some(p) => p.source.io(Interest::Read, deadline, || {
                reap(pid)?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
            }),
            None => wait_without_pidfd(pid, deadline),
        };
        match r {
            Ok(s) => {
                self.status = Some(s);
                Ok(Some(s))
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut && deadline.is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(reap(self.pid), Ok(None)) {
            adopt(self.pid);
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("status", &self.status)
            .field("pidfd", &self.pidfd.as_ref().map(|p| p.source.fd()))
            .finish_non_exhaustive()
    }
}

/// Reads `stdout` and `stderr` to their ends at the same time.
fn read_both(
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    fn read_all(r: Option<impl Read>) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            r.read_to_end(&mut buf)?;
        }
        Ok(buf)
    }
    if stdout.is_none() || stderr.is_none() {
        return Ok((read_all(stdout)?, read_all(stderr)?));
    }
    if Parker::try_current().is_none() {
        return std::thread::scope(|scope| {
            let errs = scope.spawn(|| read_all(stderr));
            let out = read_all(stdout)?;
            let err = errs
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            Ok((out, err))
        });
    }
    /// Cancels the helper fiber on the ways out that do not join it (an
    /// error, or the caller's unwind when it is cancelled).
    struct CancelOnDrop<'a>(&'a crate::JoinHandle<io::Result<Vec<u8>>>);
    impl Drop for CancelOnDrop<'_> {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    let errs = crate::spawn(move || read_all(stderr));
    let guard = CancelOnDrop(&errs);
    let out = read_all(stdout)?;
    std::mem::forget(guard);
    let err = match errs.join() {
        Ok(r) => r?,
        Err(crate::JoinError::Panicked(p)) => std::panic::resume_unwind(p),
        Err(e) => return Err(io::Error::new(io::ErrorKind::Interrupted, e.to_string())),
    };
    Ok((out, err))
}

/// `waitpid(pid, WNOHANG)`: the status if `pid` has exited (now reaped),
/// `None` if it is running. `EINTR` is retried.
fn reap(pid: libc::pid_t) -> io::Result<Option<ExitStatus>> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is valid for writes; the pid is one of ours.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == 0 {
            return Ok(None);
        }
        if r == pid {
            return Ok(Some(ExitStatus::from_raw(status)));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Blocks the thread until `pid` has exited, without reaping it
/// (`waitid` with `WNOWAIT`). An error (`ECHILD`: reaped meanwhile) ends
/// the wait too; the reap that follows reports it.
fn block_until_exited(pid: libc::pid_t) {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is valid.
        let mut info: libc::siginfo_t = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: `info` is valid for writes; plain syscall.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// The fallback wait (no pidfd): a helper thread blocks in
/// [`block_until_exited`] while the fiber parks; outside a fiber, this
/// thread blocks (or polls, with a deadline).
fn wait_without_pidfd(pid: libc::pid_t, deadline: Option<Instant>) -> io::Result<ExitStatus> {
    let in_fiber = Parker::try_current().is_some();
    loop {
        if let Some(s) = reap(pid)? {
            return Ok(s);
        }
        let left = match deadline {
            None => None,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(child_timed_out(pid)),
            },
        };
        match (in_fiber, left) {
            (true, None) => crate::spawn_blocking(move || block_until_exited(pid)),
            (true, Some(left)) => {
                let waited = crate::timeout(left, move || {
                    crate::spawn_blocking(move || block_until_exited(pid))
                });
                if waited.is_err() {
                    return Err(child_timed_out(pid));
                }
            }
            (false, None) => block_until_exited(pid),
            (false, Some(left)) => std::thread::sleep(left.min(Duration::from_millis(5))),
        }
    }
}

fn child_timed_out(pid: libc::pid_t) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("child {pid} still running at the deadline"),
    )
}

/// A pidfd for `pid`, or `None` where the kernel (or emulator) has no
/// `pidfd_open`, or `SPINDLE_NO_PIDFD` is set.
fn open_pidfd(pid: libc::pid_t) -> Option<PidFd> {
    static FORCED_OFF: OnceLock<bool> = OnceLock::new();
    if *FORCED_OFF.get_or_init(|| std::env::var_os("SPINDLE_NO_PIDFD").is_some()) {
        return None;
    }
    // SAFETY: plain syscall; the result is checked. The pid is our
    // unreaped child, so it names that child.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a new fd (close-on-exec, as pidfds are) that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    Some(PidFd {
        source: IoSource::new(fd.as_raw_fd()),
        _fd: fd,
    })
}

/// The pids of dropped children still running, and the thread that reaps
/// them.
struct Reaper {
    pids: Mutex<Vec<libc::pid_t>>,
    more: Condvar,
}

/// Hands `pid` (a child that has not exited) to the reaper thread.
fn adopt(pid: libc::pid_t) {
    static REAPER: OnceLock<&'static Reaper> = OnceLock::new();
    let reaper = *REAPER.get_or_init(|| {
        let r: &'static Reaper = Box::leak(Box::new(Reaper {
            pids: Mutex::new(Vec::new()),
            more: Condvar::new(),
        }));
        // If the OS refuses a thread, the pids wait in the list: zombies
        // until exit, as with std. Drop must not panic.
        let _ = crate::signal::with_signals_blocked(|| {
            std::thread::Builder::new()
                .name("spindle-reaper".into())
                .spawn(move || r.run())
        });
        r
    });
    reaper
        .pids
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pid);
    reaper.more.notify_one();
}

impl Reaper {
    fn run(&self) {
        let mut pids = self.pids.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            pids.retain(|&pid| matches!(reap(pid), Ok(None)));
            let wait = if pids.is_empty() {
                Duration::from_secs(3600)
            } else {
                Duration::from_millis(10)
            };
            pids = self
                .more
                .wait_timeout(pids, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}
