//! [`ChildStdin`], [`ChildStdout`], [`ChildStderr`]: std's pipe ends to a
//! child, made non-blocking and wrapped in [`Async`], so reads and writes
//! park the fiber.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process;
use std::time::Duration;

use crate::io::Async;

/// What the three pipe ends share: the wrapper around std's type, fd
/// access, and the conversions back to std's forms (which restore blocking
/// mode, so a `Stdio` made from one hands the next child a normal pipe).
macro_rules! pipe_end {
    ($name:ident, $timeout:ident, $get_timeout:ident, $what:literal) => {
        impl $name {
            pub(super) fn new(inner: process::$name) -> io::Result<$name> {
                Ok($name {
                    inner: Async::new(inner)?,
                })
            }

            #[doc = concat!("Limits how long one ", $what, " may wait; `None` (the default) waits")]
            /// for ever. One that runs out fails with
            /// [`io::ErrorKind::TimedOut`].
            ///
            /// # Errors
            ///
            /// [`io::ErrorKind::InvalidInput`] for a zero duration.
            pub fn $timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                self.inner.$timeout(timeout)
            }

            #[doc = concat!("The ", $what, " timeout.")]
            pub fn $get_timeout(&self) -> Option<Duration> {
                self.inner.$get_timeout()
            }

            /// Gives back std's pipe end, in blocking mode again.
            ///
            /// # Errors
            ///
            /// What `fcntl` returns.
            pub fn into_std(self) -> io::Result<process::$name> {
                self.inner.into_inner()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.as_raw_fd()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }

        impl TryFrom<$name> for OwnedFd {
            type Error = io::Error;
            /// The pipe's fd, in blocking mode again.
            fn try_from(end: $name) -> io::Result<OwnedFd> {
                Ok(OwnedFd::from(end.into_std()?))
            }
        }

        impl TryFrom<$name> for process::Stdio {
            type Error = io::Error;
            /// The pipe as another child's stdio (a shell pipeline), in
            /// blocking mode again.
            fn try_from(end: $name) -> io::Result<process::Stdio> {
                Ok(process::Stdio::from(end.into_std()?))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("fd", &self.as_raw_fd())
                    .finish()
            }
        }
    };
}

/// The write end of a child's stdin; writes park the fiber while the pipe
/// is full. Dropping it closes the pipe (the child reads end of file).
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use spindle::process::{Command, Stdio};
///
/// spindle::run(|| -> std::io::Result<()> {
///     let mut child = Command::new("wc").arg("-c")
///         .stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
///     let mut stdin = child.stdin.take().unwrap();
///     stdin.write_all(&[b'x'; 100_000])?; // more than a pipe holds: parks
///     drop(stdin);
///     let out = child.wait_with_output()?;
///     assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "100000");
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// [`io::ErrorKind::BrokenPipe`] once the child closed its end (`SIGPIPE`
/// is ignored in Rust programs); [`io::ErrorKind::TimedOut`] after the
/// write timeout.
///
/// # Panics
///
/// Every write that waits is a cancellation point.
pub struct ChildStdin {
    inner: Async<process::ChildStdin>,
}

pipe_end!(ChildStdin, set_write_timeout, write_timeout, "write");

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    /// Does nothing: a pipe has no user-space buffer.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The read end of a child's stdout; reads park the fiber until the child
/// writes (0 bytes: it closed its stdout, usually by exiting).
///
/// # Examples
///
/// ```
/// use std::io::{BufRead, BufReader};
/// use spindle::process::{Command, Stdio};
///
/// spindle::run(|| -> std::io::Result<()> {
///     let mut child = Command::new("sh").args(["-c", "echo one; sleep 0.01; echo two"])
///         .stdout(Stdio::piped()).spawn()?;
///     let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
///         .lines().collect::<Result<_, _>>()?;
///     assert_eq!(lines, ["one", "two"]);
///     child.wait()?;
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// [`io::ErrorKind::TimedOut`] after the read timeout.
///
/// # Panics
///
/// Every read that waits is a cancellation point.
pub struct ChildStdout {
    inner: Async<process::ChildStdout>,
}

pipe_end!(ChildStdout, set_read_timeout, read_timeout, "read");

/// The read end of a child's stderr; as [`ChildStdout`].
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use spindle::process::{Command, Stdio};
///
/// spindle::run(|| -> std::io::Result<()> {
///     let mut child = Command::new("sh").args(["-c", "echo oops >&2"])
///         .stderr(Stdio::piped()).spawn()?;
///     let mut err = String::new();
///     child.stderr.take().unwrap().read_to_string(&mut err)?;
///     assert_eq!(err, "oops\n");
///     child.wait()?;
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// As [`ChildStdout`].
///
/// # Panics
///
/// As [`ChildStdout`].
pub struct ChildStderr {
    inner: Async<process::ChildStderr>,
}

pipe_end!(ChildStderr, set_read_timeout, read_timeout, "read");

macro_rules! read_end {
    ($name:ident) => {
        impl Read for $name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.inner.read(buf)
            }

            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                self.inner.read_vectored(bufs)
            }
        }
    };
}

read_end!(ChildStdout);
read_end!(ChildStderr);
