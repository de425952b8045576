//! gevent's `monkey.patch_all()` for Rust (cargo feature `hook`): blocking
//! libc calls made inside a fiber park the fiber instead of the thread, so
//! unmodified blocking code — `std::thread::sleep`, `std::net`, synchronous
//! clients built on them — runs concurrently under [`spindle::run`](crate::run).
//!
//! ```toml
//! spindle = { version = "0.1", features = ["hook"] }
//! ```
//!
//! ## Examples
//!
//! Three fibers each call `std::thread::sleep(50 ms)`: together they take
//! 50 ms, not 150, because each sleep parks only its own fiber.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! spindle::run(|| {
//!     let sleepers: Vec<_> = (0..3)
//!         .map(|_| spindle::spawn(|| std::thread::sleep(Duration::from_millis(50))))
//!         .collect();
//!     spindle::join_all(sleepers);
//! });
//! assert!(spindle::hook::installed());
//! assert!(start.elapsed() < Duration::from_millis(140));
//! ```
//!
//! ## Where a call is the hook's
//!
//! A hooked call made on a thread that is running a spindle fiber, from
//! that fiber, parks the fiber on the runtime's timer or reactor and
//! returns exactly what the blocking call would have returned. Everywhere
//! else — plain threads, the scheduler's own stack, before `main`,
//! [`spawn_blocking`](crate::spawn_blocking) helpers — it goes straight to
//! libc. The test is two thread-local loads with no destructor, so it is
//! safe before `main`, during thread exit and in signal handlers.
//!
//! ## The calls
//!
//! | module | calls |
//! |---|---|
//! | `time` | `nanosleep`, `clock_nanosleep` (relative and `TIMER_ABSTIME`; returns its error code, never sets `errno`), `sleep`, `usleep` |
//! | `io` | `connect`, `accept`, `accept4`, `read`, `readv`, `recv`, `recvfrom`, `recvmsg`, `write`, `writev`, `send`, `sendto`, `sendmsg` |
//! | `poll` | `poll`, `ppoll` |
//! | `control` | `fcntl` (and glibc's `fcntl64`), `ioctl(FIONBIO)`, `setsockopt`, `close`, `dup`, `dup2`, `dup3` |
//!
//! What std itself calls on Linux with glibc (read from std's
//! `sys/pal/unix` and `sys/net` sources and checked with `nm -u` against a
//! std program built with Rust 1.95 that sleeps, connects (also with a
//! timeout), accepts, peeks, reads and writes (also vectored), clones,
//! sets timeouts and uses UDP: it imports `accept4`, `clock_nanosleep`,
//! `close`, `connect`, `dup`, `fcntl`, `ioctl`, `poll`, `read`, `readv`,
//! `recv`, `recvfrom`, `send`, `sendto`, `setsockopt`, `write`, `writev`,
//! all hooked, and `socket` and `getaddrinfo`, which are not): `thread::sleep` →
//! `clock_nanosleep(CLOCK_MONOTONIC, 0, ..)` (older releases call
//! `nanosleep`; both are hooked); `TcpStream::connect` → `socket`,
//! `connect`; `connect_timeout` → `ioctl(FIONBIO)`, `connect`, `poll`;
//! `TcpListener::accept` → `accept4(SOCK_CLOEXEC)`; `Read::read` on
//! sockets → `recv`, `peek` → `recv(MSG_PEEK)`; `read_vectored` → `readv`;
//! `Write::write` → `send(MSG_NOSIGNAL)`, `write_vectored` → `writev`;
//! `UdpSocket::recv_from` / `send_to` → `recvfrom` / `sendto`;
//! `set_nonblocking` → `ioctl(FIONBIO)`; `set_read_timeout` /
//! `set_write_timeout` → `setsockopt(SO_RCVTIMEO / SO_SNDTIMEO)`;
//! `try_clone` → `fcntl(F_DUPFD_CLOEXEC)`; dropping → `close`; `File`,
//! `Stdin`, pipes → `read`, `write`.
//!
//! ## Semantics kept
//!
//! - **Blocking stays blocking for the program.** The first hooked call on
//!   a fiber that meets a socket or pipe the program left blocking sets
//!   `O_NONBLOCK` underneath and remembers it (`fd.rs`); `fcntl(F_GETFL)`
//!   still shows the program's own choice, and a program that makes the fd
//!   non-blocking itself (`F_SETFL`, `FIONBIO`, `SOCK_NONBLOCK`) gets
//!   `EAGAIN` as it expects. A plain thread using such an fd still blocks:
//!   its call waits in `poll(2)` and tries again.
//! - **Timeouts.** `SO_RCVTIMEO` / `SO_SNDTIMEO` end a wait with `EAGAIN`
//!   (`connect`: `EINPROGRESS`), so std's `set_read_timeout` gives
//!   `WouldBlock` as documented; no timeout means no timeout.
//! - **errno** is saved before a park and restored after a successful call,
//!   and set after the fiber resumes on its own thread (fibers never
//!   migrate). A signal does not interrupt a parked fiber (it reaches the
//!   scheduler's `epoll_wait`), as if every handler had `SA_RESTART`.
//! - **What is left alone**: regular files, ttys, directories, epoll fds
//!   and every other fd that is not a socket or pipe; fds 0–2 (stdio is
//!   usually shared with other processes, which must not see
//!   `O_NONBLOCK`); an fd never used on a fiber.
//!
//! ## Waiting: one registration per fd
//!
//! A fiber's first wait on a managed fd adds it to its runtime's epoll set
//! once, edge-triggered, and the hook keeps that registration in its fd
//! table until the fd's number is freed (`close`, the target of `dup2` /
//! `dup3`, a number `accept` or `dup` hands out again) or the program makes
//! the fd non-blocking itself: every later wait costs no `epoll_ctl`. A
//! stream read shorter than its buffer (a write shorter than its data)
//! marks the fd drained, and the next call that way waits for the next edge
//! without first making the call that would only say `EAGAIN`, as
//! spindle's own `TcpStream` does. A fiber of another worker (or of a later
//! runtime on the same thread) waits on the fd with a one-shot registration
//! in its own epoll set instead, two `epoll_ctl` per wait: the fd keeps
//! working when moved or shared between workers. The details, and why the
//! edge-triggered waits are exact, are in `source.rs`.
//!
//! ## Closing
//!
//! `close` (and the fd that `dup2`/`dup3` overwrite) forgets the fd and
//! fails the waits of this thread's fibers parked on it *before* the real
//! `close`, so nothing of the old fd can apply to the next file the kernel
//! gives its number to (see `control.rs`).
//!
//! ## Cancellation
//!
//! A fiber [cancelled](crate::JoinHandle::cancel) while it is parked in a
//! hooked call unwinds from inside the hook, which is `extern "C-unwind"`
//! for that reason. Called from Rust (std, and every Rust client built on
//! it), the unwind runs the callers' destructors as any cancellation does:
//! the socket is dropped and closed, nothing is left half done. Called from
//! C, the unwind passes through the C frames (GCC and Clang emit unwind
//! tables by default on x86_64 and AArch64 Linux) without running anything
//! in them: whatever the C code held at that moment — a lock, a buffer, a
//! half-parsed reply — is leaked as it stands. So cancel a fiber that is
//! inside a C library only if that library can be abandoned mid-call;
//! C code built with `-fno-asynchronous-unwind-tables` has no unwind
//! tables, and the process aborts instead.
//!
//! ## Linking
//!
//! A Rust binary links std's calls to these symbols to whichever definition
//! the linker meets first. The hooks are defined here (`#[no_mangle]`),
//! and an rlib's objects are pulled into the binary only when something
//! references them, before libc: so [`Runtime::block_on`](crate::Runtime::block_on)
//! (generic, hence compiled into the program itself) references every hook
//! through `link`, which is what makes them win with GNU ld and lld alike.
//! [`installed`] checks the result from inside the program, and the test
//! `tests/hook_link.rs` checks it from the outside: it reads its own
//! binary's ELF symbol tables (`/proc/self/exe`, `.symtab` and `.dynsym`,
//! with a small reader of its own) and requires each of the 27 names to be
//! a global function defined in the executable, imported from no shared
//! library, and reached by the program's own references. CI runs it linked
//! by lld (Rust 1.90 and later link x86_64 Linux binaries with their own
//! `rust-lld`, LLD 22 with Rust 1.95) and by GNU ld 2.40 (the same test
//! relinked with `-C linker-features=-lld`, and every aarch64 binary, which
//! the cross gcc links); it also passed once linked by Debian's LLD 14
//! (`-C link-self-contained=-linker -C link-arg=-fuse-ld=lld`). The real
//! functions are looked up with `dlsym(RTLD_NEXT)` once, before `main`, by
//! an `.init_array` constructor (`symbols.rs`); spindle's own reactor,
//! timers and sockets make their own libc calls (the eventfd's `read` and
//! `write`, `poll`, `connect`, `accept4`, `send`, `sendmsg`, `fcntl`)
//! through them directly (`crate::sys`). The reads, `recv_from`s and peeks
//! that spindle's sockets leave to std's socket methods do reach the hook,
//! which passes them straight through at the cost of two loads: spindle
//! makes those fds non-blocking itself, which the hook takes as the
//! program's choice.
//! C libraries linked into the program as shared objects reach the hooks
//! too (the linker exports a definition that a shared library in the link
//! refers to; that is the linkers' documented behaviour, not covered by a
//! test here).
//!
//! ## Limits
//!
//! - **DNS**: `getaddrinfo` (std's `ToSocketAddrs` for host names) does its
//!   I/O inside glibc with internal calls that no hook sees, so it blocks
//!   the thread; resolve with [`spindle::net::lookup_host`](crate::net::lookup_host),
//!   which runs it on a helper thread.
//! - **std's `Mutex`, `Condvar`, `RwLock`, channels** wait on futexes
//!   (`syscall(SYS_futex)`), which cannot be hooked: a fiber blocking on
//!   one blocks the thread. Use [`spindle::sync`](crate::sync).
//! - **Statically linked binaries** (musl, `-static` glibc) have no
//!   `RTLD_NEXT` to find libc in: the constructor aborts with a message.
//! - **`dlopen`ed libraries** bind to libc's symbols, not the program's,
//!   unless the program exports its symbols (`-C link-arg=-rdynamic`).
//! - Calls glibc makes internally (`fclose`, `getaddrinfo`, `system`) and
//!   raw `syscall`s bypass the hooks. An fd closed that way keeps its state
//!   and its registration until its number is met again by `accept`,
//!   `dup`, `dup2` or `close`; a fiber waiting meanwhile on a new file that
//!   got the number from an unhooked call (`socket`, `open`) would wait on
//!   the old file's registration, for ever unless a timeout ends it.
//! - [`spindle::runtime::wait_readable`](crate::runtime::wait_readable) /
//!   `wait_writable` on a blocking std socket that the hook has registered
//!   with the same runtime fail with `EEXIST` (one epoll set holds an fd
//!   once): wait with the std call itself, or hand the socket to
//!   `spindle::net` (`from_std`), which takes it over.
//! - A fiber parked on an fd that another thread closes (only C code can:
//!   in Rust the fiber's borrow keeps the socket alive) fails with `EBADF`
//!   when its scheduler next polls, which a timer or any event brings.
//! - An fd shared with another process (inherited, passed over a Unix
//!   socket) shares `O_NONBLOCK` with it: the other process sees the
//!   non-blocking mode the hook set.
//! - `writev` and `sendmsg` on a managed fd return after the first partial
//!   write; `MSG_WAITALL` returns after the first data; `ppoll` with a
//!   signal mask blocks the thread.
//! - A signal handler that interrupts a fiber runs as that fiber: a
//!   blocking call in it on a managed fd would park the fiber from inside
//!   the handler. Handlers should only use async-signal-safe calls on fds
//!   they made non-blocking (a self-pipe), which pass straight through.

mod control;
mod fd;
mod io;
mod poll;
mod source;
pub(crate) mod symbols;
mod time;

/// Whether this program's calls to the hooked libc functions reach the
/// hooks: the linker bound the program's references to `nanosleep`,
/// `clock_nanosleep`, `recv`, `send`, `poll` and `close` to spindle's
/// definitions, and the real functions were resolved before `main`.
///
/// # Examples
///
/// ```
/// spindle::run(|| assert!(spindle::hook::installed()));
/// ```
pub fn installed() -> bool {
    link();
    // Each pair: the address the program's own (libc crate) reference
    // resolved to, and the hook's.
    let pairs: [(usize, usize); 6] = [
        (
            libc::nanosleep as *const () as usize,
            time::nanosleep as *const () as usize,
        ),
        (
            libc::clock_nanosleep as *const () as usize,
            time::clock_nanosleep as *const () as usize,
        ),
        (
            libc::recv as *const () as usize,
            io::recv as *const () as usize,
        ),
        (
            libc::send as *const () as usize,
            io::send as *const () as usize,
        ),
        (
            libc::poll as *const () as usize,
            poll::poll as *const () as usize,
        ),
        (
            libc::close as *const () as usize,
            control::close as *const () as usize,
        ),
    ];
    symbols::resolved() && pairs.iter().all(|&(program, hook)| program == hook)
}

/// Makes the hook forget `fd`'s state, to learn it again at its next call
/// (spindle changed the fd's mode itself, see `crate::sys`).
pub(crate) fn relearn(fd: libc::c_int) {
    fd::set(fd, 0);
}

/// References every hook, so that the linker pulls them into any program
/// that starts a runtime (see "Linking" in the module docs). Called by
/// `Runtime::block_on`.
#[inline(never)]
pub(crate) fn link() {
    let hooks: [usize; 27] = [
        io::read as *const () as usize,
        io::readv as *const () as usize,
        io::recv as *const () as usize,
        io::recvfrom as *const () as usize,
        io::recvmsg as *const () as usize,
        io::write as *const () as usize,
        io::writev as *const () as usize,
        io::send as *const () as usize,
        io::sendto as *const () as usize,
        io::sendmsg as *const () as usize,
        io::connect as *const () as usize,
        io::accept as *const () as usize,
        io::accept4 as *const () as usize,
        poll::poll as *const () as usize,
        poll::ppoll as *const () as usize,
        time::nanosleep as *const () as usize,
        time::clock_nanosleep as *const () as usize,
        time::sleep as *const () as usize,
        time::usleep as *const () as usize,
        control::fcntl as *const () as usize,
        control::fcntl64 as *const () as usize,
        control::ioctl as *const () as usize,
        control::setsockopt as *const () as usize,
        control::close as *const () as usize,
        control::dup as *const () as usize,
        control::dup2 as *const () as usize,
        control::dup3 as *const () as usize,
    ];
    std::hint::black_box(hooks);
}
