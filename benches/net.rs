//! Echo servers beside their peers, on the same work: 1,000 loopback TCP
//! connections, each making 1,000 round trips of 64 bytes, all connections
//! at once.
//!
//! Servers (each on one thread, pinned to the first CPU the process may
//! use):
//!
//! - `echo/spindle`: one runtime, a fiber per connection (`spindle::net`).
//! - `echo/tokio_current_thread`: a current-thread runtime, a task per
//!   connection (`tokio::net`, `AsyncReadExt`/`AsyncWriteExt`).
//! - `echo/may_1_worker`: may with one worker, a coroutine per connection
//!   (`may::net`).
//! - `echo/std_net_hooked` (only with `--features hook`): spindle's server
//!   written with plain `std::net` sockets, made cooperative by the hook.
//!
//! All three do the same thing the same way: the main fiber / `block_on`
//! future / first coroutine binds `127.0.0.1:0`, accepts the 1,000
//! connections one after another and spawns a handler for each as it
//! arrives (so accepting overlaps the client's connecting), sets
//! `TCP_NODELAY`, then joins the handlers. A handler reads up to 1 KiB and
//! writes back what it read until the peer closes. spindle's and may's
//! handlers are literally the same function over `std::io::{Read, Write}`.
//!
//! ## The client
//!
//! One client serves all three: a hand-written, level-triggered epoll loop
//! on the bench thread, pinned to the second CPU (the machine this was
//! written for has two: server on one, client on the other). Why not a
//! tokio (or spindle) client with 1,000 tasks: it would share its reactor,
//! scheduler and socket code with one of the servers under test, so a
//! change to that runtime would move both ends of its own measurement;
//! the epoll loop shares nothing with any of them and is close to the
//! cheapest client there is: per round trip it makes one `write` and one
//! `read` (of exactly the bytes still missing, so never an `EAGAIN`), and
//! one `epoll_wait` returns up to 1,024 ready connections. A server does at
//! least as much per round trip (read, write, the `read` that says
//! `EAGAIN`, its reactor), so it is the server's thread that saturates.
//! (may pins its workers by itself, from the affinity of the thread that
//! starts it; that is turned off here and its worker is pinned like the
//! other servers' threads, from its first coroutine.)
//!
//! ## One run, and what is timed
//!
//! 1. Not timed: start the server; open the 1,000 connections with
//!    blocking `connect`s, one at a time, each waiting for its handshake
//!    (so at most 1,000 connections are ever queued, within every
//!    listener's backlog: spindle `SOMAXCONN`, tokio and may 1,024: no
//!    dropped SYN, no 1-second retransmit); wait until the server reports
//!    it has accepted them all.
//! 2. Timed: every connection sends its first message, then each echo
//!    completed sends that connection's next one, until all 1,000,000 round
//!    trips are done. Each message's 64 bytes are distinct (connection
//!    number, round number, then a pseudo-random fill from both), and every
//!    byte of every echo is compared with what was sent: a server that
//!    loses, reorders, mixes up or invents a byte fails the run.
//! 3. Not timed: the client shuts down its side of every connection and
//!    reads until EOF, which must come with no further byte; the server's
//!    handlers end, it joins them and must report success.
//!
//! Criterion times whole runs (`iter_custom`, flat sampling, 10 samples),
//! and the throughput of 1,000,000 elements per run makes its "elem/s" the
//! round trips per second. Latency is per round trip, from just before the
//! `write` to the read that completes the 64-byte echo; the p50 and p99
//! over every round trip of every run (warm-up included) are printed on one
//! line after each server's result:
//!
//! ```text
//! echo/spindle: p50 7247.2 µs, p99 11567.2 µs over 11000000 round trips; server CPU 7.05 µs per round trip (median of 11 runs)
//! ```
//!
//! With all 1,000 connections in flight, a round trip waits behind the
//! others, so its latency is mostly queueing: by Little's law the p50 is
//! close to 1,000 / (round trips per second). The p99 and its ratio to the
//! p50 show how evenly a server serves its connections.
//!
//! Client and server each keep a core busy, and on loopback much of the
//! kernel's work for one side runs on the other side's thread (a `write`
//! delivers into the peer's socket), so throughput measures the pair. The
//! line also gives the server thread's CPU time per round trip (from
//! `CLOCK_THREAD_CPUTIME_ID`, from "all accepted" to "all handlers done"):
//! that part is the server's alone.
//!
//! tokio and may are dev-dependencies for these baselines only.
//! `cargo bench --bench net`; keep the machine otherwise idle. A run is a
//! few seconds on a small machine, and each server makes at least 11 (one
//! warm-up, 10 samples), so a full run takes a few minutes, and criterion
//! may warn that 10 samples do not fit its 20-second target: they are the
//! floor, and that is expected.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

/// Connections per run.
const CONNS: usize = 1_000;
/// Round trips per connection per run.
const ROUNDS: u32 = 1_000;
/// Bytes per message.
const MSG: usize = 64;
/// The servers' read buffer.
const SERVER_BUF: usize = 1024;

// --- the servers -----------------------------------------------------------

/// What a server tells the client, in this order.
enum ServerEvent {
    /// Bound; connect here.
    Listening(SocketAddr),
    /// Every connection has been accepted and has its handler.
    Accepted,
}

/// Waits for a started server to finish and gives its result: the CPU
/// time its thread used from "every connection accepted" to "every handler
/// done" (the round trips and the closing).
type Join = Box<dyn FnOnce() -> io::Result<Duration>>;

/// CPU time used by the calling thread so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert!(r == 0, "clock_gettime: {}", io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Starts a server that accepts `conns` connections, echoes on each until
/// its peer closes, and then ends.
type Launch = fn(conns: usize, events: Sender<ServerEvent>) -> Join;

/// The handler of spindle and may: echo until EOF.
fn echo_std(mut conn: impl Read + Write) -> io::Result<()> {
    let mut buf = [0u8; SERVER_BUF];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n])?;
    }
}

/// Tells the client; if the client is gone, the bench is failing already.
fn tell(events: &Sender<ServerEvent>, e: ServerEvent) {
    events.send(e).expect("the client went away");
}

/// A listening socket and how to take the next connection from it (with
/// `TCP_NODELAY` set).
type Listening<C> = (SocketAddr, Box<dyn FnMut() -> io::Result<C>>);

/// spindle's server, over whichever sockets `listen` makes (run in the
/// runtime's main fiber): one runtime, a fiber per connection running
/// [`echo_std`].
fn fiber_server<C: Read + Write + 'static>(
    name: &str,
    conns: usize,
    events: Sender<ServerEvent>,
    listen: fn() -> io::Result<Listening<C>>,
) -> Join {
    let thread = std::thread::Builder::new()
        .name(format!("echo-{name}"))
        .spawn(move || -> io::Result<Duration> {
            pin_server();
            let rt = spindle::Runtime::new()?;
            rt.block_on(move || -> io::Result<Duration> {
                let (addr, mut accept) = listen()?;
                tell(&events, ServerEvent::Listening(addr));
                let mut handlers = Vec::with_capacity(conns);
                for _ in 0..conns {
                    let conn = accept()?;
                    handlers.push(spindle::spawn(move || echo_std(conn)));
                }
                tell(&events, ServerEvent::Accepted);
                let cpu = thread_cpu_time();
                for h in handlers {
                    h.join().expect("an echo fiber failed")?;
                }
                Ok(thread_cpu_time() - cpu)
            })
        })
        .expect("spawn the server thread");
    Box::new(move || thread.join().expect("the server thread panicked"))
}

/// The `listen` function of [`fiber_server`] for a listener type with
/// std's shape (`bind`, `local_addr`, `accept`, `set_nodelay`).
macro_rules! listen {
    ($listener:ty) => {
        || {
            let listener = <$listener>::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let accept = move || {
                let (conn, _) = listener.accept()?;
                conn.set_nodelay(true)?;
                Ok(conn)
            };
            Ok((addr, Box::new(accept)))
        }
    };
}

fn spindle_server(conns: usize, events: Sender<ServerEvent>) -> Join {
    fiber_server("spindle", conns, events, listen!(spindle::net::TcpListener))
}

/// The same server written with plain `std::net`, under the `hook`
/// feature: std's blocking `accept`, `read` and `write_all` park the fiber.
#[cfg(feature = "hook")]
fn std_hooked_server(conns: usize, events: Sender<ServerEvent>) -> Join {
    assert!(spindle::hook::installed(), "the hooks did not win the link");
    fiber_server("std-hooked", conns, events, listen!(std::net::TcpListener))
}

fn tokio_server(conns: usize, events: Sender<ServerEvent>) -> Join {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo(mut conn: tokio::net::TcpStream) -> io::Result<()> {
        let mut buf = [0u8; SERVER_BUF];
        loop {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            conn.write_all(&buf[..n]).await?;
        }
    }

    let thread = std::thread::Builder::new()
        .name("echo-tokio".into())
        .spawn(move || -> io::Result<Duration> {
            pin_server();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                tell(&events, ServerEvent::Listening(listener.local_addr()?));
                let mut handlers = Vec::with_capacity(conns);
                for _ in 0..conns {
                    let (conn, _) = listener.accept().await?;
                    conn.set_nodelay(true)?;
                    handlers.push(tokio::spawn(echo(conn)));
                }
                tell(&events, ServerEvent::Accepted);
                let cpu = thread_cpu_time();
                for h in handlers {
                    h.await.expect("an echo task failed")?;
                }
                Ok(thread_cpu_time() - cpu)
            })
        })
        .expect("spawn the server thread");
    Box::new(move || thread.join().expect("the tokio server panicked"))
}

fn may_server(conns: usize, events: Sender<ServerEvent>) -> Join {
    let main = move || -> io::Result<Duration> {
        // With one worker, every coroutine runs on the thread this pins.
        pin_server();
        let listener = may::net::TcpListener::bind("127.0.0.1:0")?;
        tell(&events, ServerEvent::Listening(listener.local_addr()?));
        let mut handlers = Vec::with_capacity(conns);
        for _ in 0..conns {
            let (conn, _) = listener.accept()?;
            conn.set_nodelay(true)?;
            // SAFETY: the handler touches no thread-local storage and never
            // blocks the thread, as may requires: it only reads and writes
            // a may socket, which parks the coroutine.
            handlers.push(unsafe { may::coroutine::spawn(move || echo_std(conn)) });
        }
        tell(&events, ServerEvent::Accepted);
        // One worker: this thread runs every coroutine, so its CPU time is
        // the server's.
        let cpu = thread_cpu_time();
        for h in handlers {
            h.join().expect("an echo coroutine failed")?;
        }
        Ok(thread_cpu_time() - cpu)
    };
    // SAFETY: as above; `main` also sets its thread's CPU affinity and
    // sends on an unbounded std channel, neither of which blocks.
    let main = unsafe { may::coroutine::spawn(main) };
    Box::new(move || main.join().expect("the may server panicked"))
}

// --- the client ------------------------------------------------------------

/// One client connection and the round trip it has in flight.
struct Conn {
    stream: TcpStream,
    /// Round trips completed.
    round: u32,
    /// Bytes of the current echo received so far.
    got: usize,
    sent_at: Instant,
    sent: [u8; MSG],
    back: [u8; MSG],
}

impl Conn {
    /// Fills in message `self.round` of connection `id` and sends it.
    fn send(&mut self, id: usize) {
        self.sent[..4].copy_from_slice(&(id as u32).to_le_bytes());
        self.sent[4..8].copy_from_slice(&self.round.to_le_bytes());
        let mut x = (id as u32).wrapping_mul(0x9e37_79b9) ^ self.round.wrapping_mul(0x85eb_ca6b);
        for b in &mut self.sent[8..] {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *b = (x >> 24) as u8;
        }
        self.sent_at = Instant::now();
        // One message in flight per connection: the socket's send queue is
        // empty, so 64 bytes always fit and a short write cannot happen.
        match (&self.stream).write(&self.sent) {
            Ok(MSG) => {}
            r => panic!("connection {id}, round {}: write gave {r:?}", self.round),
        }
    }
}

/// Opens `n` connections to `addr`, one at a time.
fn connect_all(addr: SocketAddr, n: usize) -> Vec<Conn> {
    (0..n)
        .map(|id| {
            let stream = TcpStream::connect(addr)
                .unwrap_or_else(|e| panic!("connection {id}: connect: {e}"));
            stream.set_nodelay(true).unwrap();
            stream.set_nonblocking(true).unwrap();
            Conn {
                stream,
                round: 0,
                got: 0,
                sent_at: Instant::now(),
                sent: [0; MSG],
                back: [0; MSG],
            }
        })
        .collect()
}

/// The timed part: every connection's `ROUNDS` round trips, all at once.
/// Pushes each round trip's latency in nanoseconds.
fn run_round_trips(conns: &mut [Conn], latencies: &mut Vec<u32>) -> Duration {
    // SAFETY: plain syscall; the result is checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1: {}", io::Error::last_os_error());
    // SAFETY: `ep` is a new descriptor that nothing else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    for (id, c) in conns.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: id as u64,
        };
        // SAFETY: both fds are open and `ev` is a valid event.
        let r = unsafe {
            libc::epoll_ctl(
                ep.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                c.stream.as_raw_fd(),
                &mut ev,
            )
        };
        assert!(r == 0, "epoll_ctl: {}", io::Error::last_os_error());
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];

    let start = Instant::now();
    for (id, c) in conns.iter_mut().enumerate() {
        c.send(id);
    }
    let mut active = conns.len();
    while active > 0 {
        // SAFETY: `events` has room for the number of events given.
        let n = unsafe {
            libc::epoll_wait(
                ep.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                -1,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            assert!(e.kind() == io::ErrorKind::Interrupted, "epoll_wait: {e}");
            continue;
        }
        for ev in &events[..n as usize] {
            let id = ev.u64 as usize;
            let c = &mut conns[id];
            match (&c.stream).read(&mut c.back[c.got..]) {
                Ok(0) => panic!("connection {id}: the server closed it in round {}", c.round),
                Ok(k) => c.got += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("connection {id}, round {}: read: {e}", c.round),
            }
            assert!(
                c.round < ROUNDS,
                "connection {id}: the server sent bytes after the last echo"
            );
            if c.got < MSG {
                continue;
            }
            latencies.push(
                c.sent_at
                    .elapsed()
                    .as_nanos()
                    .try_into()
                    .unwrap_or(u32::MAX),
            );
            assert!(
                c.back == c.sent,
                "connection {id}, round {}: sent {:?}, echoed {:?}",
                c.round,
                c.sent,
                c.back
            );
            c.got = 0;
            c.round += 1;
            if c.round < ROUNDS {
                c.send(id);
            } else {
                active -= 1;
            }
        }
    }
    start.elapsed()
}

/// Closes the client's side of every connection and checks that each then
/// gives EOF with no stray byte.
fn close_all(conns: Vec<Conn>) {
    for c in &conns {
        c.stream.shutdown(Shutdown::Write).unwrap();
    }
    for (id, c) in conns.into_iter().enumerate() {
        c.stream.set_nonblocking(false).unwrap();
        let mut rest = [0u8; 16];
        match (&c.stream).read(&mut rest) {
            Ok(0) => {}
            r => panic!("connection {id}: expected EOF after the last echo, got {r:?}"),
        }
    }
}

/// One whole run against a new server from `launch`; returns the time of
/// the round trips, adds their latencies to `latencies` and the server's CPU
/// time to `server_cpu`.
fn run_once(launch: Launch, latencies: &mut Vec<u32>, server_cpu: &mut Vec<Duration>) -> Duration {
    let (events, from_server) = channel();
    let join = launch(CONNS, events);
    let Ok(ServerEvent::Listening(addr)) = from_server.recv() else {
        join().expect("the server failed to start");
        panic!("the server ended without listening");
    };
    let mut conns = connect_all(addr, CONNS);
    let Ok(ServerEvent::Accepted) = from_server.recv() else {
        join().expect("the server failed to accept");
        panic!("the server ended without accepting every connection");
    };
    latencies.reserve(CONNS * ROUNDS as usize);
    let elapsed = run_round_trips(&mut conns, latencies);
    close_all(conns);
    server_cpu.push(join().expect("the server failed"));
    elapsed
}

/// Prints the median and 99th percentile of `latencies` (nanoseconds) and
/// the median server CPU time per round trip, and empties both.
///
/// With client and server each saturating a core, throughput says as much
/// about the client as about the server; the server's CPU time per round
/// trip is the part that is the server's alone.
fn report(name: &str, latencies: &mut Vec<u32>, server_cpu: &mut Vec<Duration>) {
    if latencies.is_empty() {
        return; // filtered out, or only listed
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize] as f64 / 1e3;
    server_cpu.sort_unstable();
    let cpu = server_cpu[server_cpu.len() / 2];
    let per_trip = cpu.as_nanos() as f64 / (CONNS as f64 * f64::from(ROUNDS)) / 1e3;
    println!(
        "{name}: p50 {:.1} µs, p99 {:.1} µs over {} round trips; \
         server CPU {per_trip:.2} µs per round trip (median of {} runs)",
        at(0.50),
        at(0.99),
        latencies.len(),
        server_cpu.len()
    );
    latencies.clear();
    server_cpu.clear();
}

// --- the machine -----------------------------------------------------------

/// The CPUs the server and the client run on: the first two this process
/// may use, or `None` (no pinning) if it may use only one.
static CPUS: OnceLock<Option<(usize, usize)>> = OnceLock::new();

fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero `cpu_set_t` is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid `cpu_set_t` of the size given; pid 0 is
    // this thread.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert!(r == 0, "sched_getaffinity: {}", io::Error::last_os_error());
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below `CPU_SETSIZE`, the size of the set.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

fn pin_current_thread(cpu: usize) {
    // SAFETY: an all-zero `cpu_set_t` is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` came from `allowed_cpus`, so it is below `CPU_SETSIZE`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid `cpu_set_t` of the size given; pid 0 is
    // this thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    assert!(r == 0, "sched_setaffinity: {}", io::Error::last_os_error());
}

/// Pins the calling thread (a server's) to the server's CPU.
fn pin_server() {
    if let Some(Some((server, _))) = CPUS.get() {
        pin_current_thread(*server);
    }
}

/// Raises the soft limit on open files to the hard limit: a run holds
/// 2,000 sockets (both ends of 1,000 connections), more than the usual
/// default soft limit of 1,024.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid `rlimit` to write to.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert!(r == 0, "getrlimit: {}", io::Error::last_os_error());
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid `rlimit`; raising the soft limit up to the
    // hard one needs no privilege.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert!(r == 0, "setrlimit: {}", io::Error::last_os_error());
    let needed = 2 * CONNS as u64 + 64;
    assert!(
        lim.rlim_cur >= needed,
        "RLIMIT_NOFILE hard limit is {}, the bench needs about {needed} fds",
        lim.rlim_cur
    );
}

// --- the bench -------------------------------------------------------------

fn echo(c: &mut Criterion) {
    raise_fd_limit();
    let cpus = *CPUS.get_or_init(|| match allowed_cpus()[..] {
        [server, client, ..] => Some((server, client)),
        _ => None,
    });
    match cpus {
        Some((server, client)) => {
            pin_current_thread(client);
            println!("echo: servers on CPU {server}, the client on CPU {client}");
        }
        None => println!("echo: one CPU only: server and client share it, nothing pinned"),
    }
    // Before may's scheduler starts (its first spawn): one worker, pinned
    // by `pin_server` like the other servers rather than by may itself
    // (which would take the client's CPU from this thread's affinity).
    may::config().set_workers(1).set_worker_pin(false);

    let mut g = c.benchmark_group("echo");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(CONNS as u64 * u64::from(ROUNDS)));

    #[allow(unused_mut)]
    let mut servers: Vec<(&str, Launch)> = vec![
        ("spindle", spindle_server),
        ("tokio_current_thread", tokio_server),
        ("may_1_worker", may_server),
    ];
    #[cfg(feature = "hook")]
    servers.push(("std_net_hooked", std_hooked_server));
    let (mut latencies, mut server_cpu) = (Vec::new(), Vec::new());
    for (name, launch) in servers {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| run_once(launch, &mut latencies, &mut server_cpu))
                    .sum()
            })
        });
        report(&format!("echo/{name}"), &mut latencies, &mut server_cpu);
    }
    g.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
