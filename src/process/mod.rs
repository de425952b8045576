//! Subprocesses whose waits park the fiber: [`Command`] is
//! `std::process::Command`, and the [`Child`] it spawns has pipes that are
//! fiber-aware [`Read`](std::io::Read)/[`Write`](std::io::Write) and a
//! [`wait`](Child::wait) that parks instead of blocking the thread
//! (asyncio's `create_subprocess_exec`, gevent's `subprocess`).
//!
//! std's own types are used where they exist: [`ExitStatus`], [`Output`],
//! [`Stdio`] and `io::Error`.
//!
//! ## How a child is spawned and waited for
//!
//! [`Command`] holds a `std::process::Command` and spawns with it, so
//! everything std does at spawn (the `PATH` search, default `SIGPIPE` in
//! the child, the exec error reported back to [`spawn`](Command::spawn))
//! stays as it is. One thing is added: the child unblocks the signals that
//! a [`Signals`](crate::signal::Signals) of the spawning thread blocked
//! (see [`signal`](crate::signal)). Spawning blocks the thread
//! for the `fork`/`exec` itself (std waits until `exec` has succeeded or
//! failed; well under a millisecond for a small parent), never for the
//! child's run.
//!
//! Then spindle owns the pid and reaps it itself:
//!
//! - **pidfd** (Linux 5.3+): `pidfd_open(2)` gives an fd that becomes
//!   readable when the child exits. A waiting fiber parks on it in the
//!   reactor, like a socket read; a deadline is the reactor's timer.
//! - **Fallback**, where `pidfd_open` fails (`ENOSYS` on older kernels and
//!   under some emulators): a helper thread of
//!   [`spawn_blocking`](crate::spawn_blocking) blocks in
//!   `waitid(WEXITED | WNOWAIT)`, which waits for the exit *without*
//!   reaping, while the fiber parks; the fiber then reaps. A wait that
//!   times out or is cancelled leaves that helper thread blocked until the
//!   child exits. Each wait holds one thread of the pool (at most
//!   [`MAX_BLOCKING_THREADS`](crate::runtime::MAX_BLOCKING_THREADS); more
//!   waits queue behind them, as other `spawn_blocking` work does). Setting the environment variable `SPINDLE_NO_PIDFD` (to
//!   anything) when the first child is spawned forces this path, for tests.
//!
//! Either way the reaping is `waitpid(pid, WNOHANG)` of this one pid, so
//! children spawned by other code (std's `Command`, another library) are
//! never reaped behind their owner's back.
//!
//! ## Dropping a `Child`
//!
//! As std, dropping a [`Child`] neither kills nor waits for the process:
//! it runs on. Unlike std, it does not become a zombie: if it has not exited
//! yet, its pid goes to one process-wide reaper thread (started on first
//! use, named `spindle-reaper`, all catchable signals blocked) that checks
//! its pids every 10 ms and reaps each one when it exits.
//!
//! ## Outside a fiber
//!
//! Every wait blocks the thread, as std's would.
//!
//! ## Differences from std
//!
//! | std | here |
//! |---|---|
//! | `Child::wait_timeout` absent (the `wait-timeout` crate) | [`Child::wait_timeout`] |
//! | dropped `Child` left a zombie once it exits | reaped in the background |
//! | `ChildStdout` etc. block | park the fiber; read/write timeouts |
//! | `From<ChildStdout>` (etc.) for `Stdio` and `OwnedFd` | `TryFrom`: blocking mode is restored first, which can fail |
//! | a child inherits the spawning thread's signal mask | the signals a [`Signals`](crate::signal::Signals) blocked are unblocked in the child |

mod child;
mod stdio;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process;

pub use child::Child;
pub use std::process::{ExitStatus, Output, Stdio};
pub use stdio::{ChildStderr, ChildStdin, ChildStdout};

/// A process builder: `std::process::Command`, whose [`spawn`](Self::spawn)
/// gives a fiber-aware [`Child`] and whose [`output`](Self::output) and
/// [`status`](Self::status) park the fiber while the child runs.
///
/// The builder methods are std's; [`as_std_mut`](Self::as_std_mut) reaches
/// the rest (`CommandExt`'s `uid`, `process_group`, `pre_exec`...).
///
/// # Examples
///
/// ```
/// use spindle::process::Command;
///
/// spindle::run(|| -> std::io::Result<()> {
///     let out = Command::new("sh").arg("-c").arg("echo $GREETING; exit 3")
///         .env("GREETING", "hello")
///         .output()?; // parks this fiber; others run meanwhile
///     assert_eq!(out.stdout, b"hello\n");
///     assert_eq!(out.status.code(), Some(3));
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # `Send`
///
/// `Send` and `Sync`, as std's.
pub struct Command {
    inner: process::Command,
    /// Which of stdin, stdout, stderr the caller configured: `output`
    /// applies its own defaults (null, piped, piped) only to the others.
    configured: [bool; 3],
    /// Whether `inner` has the `pre_exec` hook that unblocks, in the child,
    /// the signals a `Signals` blocked (added once, when first needed).
    unblocks_signals: bool,
}

impl Command {
    /// A command that runs `program` (std's `Command::new`: a name without
    /// a `/` is looked up in `PATH`).
    ///
    /// # Examples
    ///
    /// ```
    /// let status = spindle::run(|| spindle::process::Command::new("true").status());
    /// assert!(status.unwrap().success());
    /// ```
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command::from(process::Command::new(program))
    }

    /// Adds one argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable of the child.
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets several environment variables of the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// The child's stdin: [`Stdio::piped`] gives [`Child::stdin`].
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdin(cfg);
        self.configured[0] = true;
        self
    }

    /// The child's stdout: [`Stdio::piped`] gives [`Child::stdout`].
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdout(cfg);
        self.configured[1] = true;
        self
    }

    /// The child's stderr: [`Stdio::piped`] gives [`Child::stderr`].
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stderr(cfg);
        self.configured[2] = true;
        self
    }

    /// The std command inside, for what this type does not forward
    /// (`std::os::unix::process::CommandExt`, the `get_*` accessors).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::process::CommandExt;
    /// use spindle::process::Command;
    ///
    /// let mut cmd = Command::new("true");
    /// cmd.as_std_mut().arg0("renamed");
    /// assert_eq!(cmd.as_std_mut().get_program(), "true");
    /// ```
    pub fn as_std_mut(&mut self) -> &mut process::Command {
        &mut self.inner
    }

    /// Starts the child; its stdio defaults to inherited, as std's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use spindle::process::{Command, Stdio};
    ///
    /// spindle::run(|| -> std::io::Result<()> {
    ///     let mut child = Command::new("tr").arg("a-z").arg("A-Z")
    ///         .stdin(Stdio::piped()).stdout(Stdio::piped())
    ///         .spawn()?;
    ///     child.stdin.take().unwrap().write_all(b"shout")?; // then closed
    ///     let mut text = String::new();
    ///     child.stdout.take().unwrap().read_to_string(&mut text)?;
    ///     assert_eq!(text, "SHOUT");
    ///     assert!(child.wait()?.success());
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// What std's `spawn` returns ([`io::ErrorKind::NotFound`] for an
    /// unknown program, ...); what `fcntl` returns while making the pipes
    /// non-blocking (the child is then killed and reaped).
    pub fn spawn(&mut self) -> io::Result<Child> {
        if !self.unblocks_signals && crate::signal::blocks_any() {
            // SAFETY: the hook runs in the child between fork and exec and
            // only calls async-signal-safe functions (see
            // `unblock_in_child`).
            unsafe {
                self.inner.pre_exec(|| {
                    crate::signal::unblock_in_child();
                    Ok(())
                })
            };
            self.unblocks_signals = true;
        }
        Child::from_std(self.inner.spawn()?)
    }

    /// Runs the child to its end with stdin null and stdout and stderr
    /// collected (unless configured otherwise), parking the fiber (std's
    /// `output`).
    ///
    /// # Panics
    ///
    /// As a cancellation point: a cancelled caller unwinds, and the child
    /// is left to the reaper (see "Dropping a `Child`" in the module docs).
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn), and what reading the pipes or waiting
    /// returns.
    pub fn output(&mut self) -> io::Result<Output> {
        let defaults = [Stdio::null(), Stdio::piped(), Stdio::piped()];
        let configured = self.configured;
        for (i, d) in defaults.into_iter().enumerate() {
            if !configured[i] {
                self.set_stdio(i, d);
            }
        }
        let spawned = self.spawn();
        // Back to std's defaults for `spawn` and `status` (inherit).
        for (i, &c) in configured.iter().enumerate() {
            if !c {
                self.set_stdio(i, Stdio::inherit());
            }
        }
        self.configured = configured;
        spawned?.wait_with_output()
    }

    /// Runs the child to its end (stdio inherited unless configured) and
    /// returns its exit status, parking the fiber.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::process::Command;
    ///
    /// let status = spindle::run(|| Command::new("sh").args(["-c", "exit 7"]).status());
    /// assert_eq!(status.unwrap().code(), Some(7));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`output`](Self::output).
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn) and [`Child::wait`].
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    fn set_stdio(&mut self, i: usize, cfg: Stdio) {
        match i {
            0 => self.inner.stdin(cfg),
            1 => self.inner.stdout(cfg),
            _ => self.inner.stderr(cfg),
        };
    }
}

impl From<process::Command> for Command {
    /// Takes a std command as it is configured. Its stdio settings count as
    /// not configured for [`Command::output`]'s defaults, since std does
    /// not tell.
    fn from(inner: process::Command) -> Command {
        Command {
            inner,
            configured: [false; 3],
            unblocks_signals: false,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}
