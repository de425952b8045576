//! [`Server`]: one TCP port served from every worker of the runtime.
//!
//! The trade between the two ways is in [`Spread`]'s docs; errors and
//! shutdown in [`Server`]'s.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::{TcpListener, TcpStream};
use crate::runtime::{Builder, JoinError, SendJoinHandle};

/// How the connections of one port reach the workers.
///
/// A runtime of `n` workers can take connections on one port in two ways,
/// both built here and measured (BENCHMARKS.md, "HTTP plaintext"):
///
/// - [`Spread::ReusePort`] (the default): one listener per worker, all
///   bound to the same address with `SO_REUSEPORT`
///   ([`TcpListener::bind_reuseport`]). The kernel picks the listener of
///   each new connection by a hash of its addresses, and the worker that
///   owns that listener accepts it and serves it in a local fiber: no
///   thread ever touches another's connection, and accepting scales with
///   the workers.
/// - [`Spread::HandOff`] (seastar-style): one
///   listener, one acceptor fiber on the worker that started the server;
///   each accepted connection goes to the worker with the fewest live
///   fibers ([`Builder::balanced`](crate::Builder::balanced)), whose fiber
///   registers the socket with its own reactor at its first wait.
///
/// # Why `SO_REUSEPORT` is the default
///
/// On long keep-alive connections both cost the same per request: after
/// the accept, a connection lives on one worker either way. They differ in
/// what a *new* connection costs and in how the connections are spread:
///
/// | | `ReusePort` | `HandOff` |
/// |---|---|---|
/// | accepting | on every worker at once | one fiber, on one worker |
/// | per new connection | a local spawn | a remote spawn: inbox push, maybe an eventfd write and a wake-up of the other thread |
/// | spread | a hash: even on average, blind to load | by live fibers, so an idle worker gets the next one |
/// | when a worker is stuck | its share of new connections waits in its queue | if it is the acceptor's, no connection is accepted |
/// | other programs | one of the same user binding the port with `SO_REUSEPORT` joins the group | the port is yours alone |
///
/// Measured on 2 cores with 2 workers and `wrk` (BENCHMARKS.md, "HTTP
/// plaintext"): with keep-alive and with pipelining the two are equal
/// within noise; with a new connection per request the hand-off spent
/// 1.25× the server CPU per request (15.4 µs against 12.3 µs) and served
/// 0.75× the requests per second. Pick [`Spread::HandOff`] when
/// connections are few, long and uneven in the work they bring, so that
/// placing by load matters more than the cost of an accept, or when the
/// port must not be shared with other programs.
///
/// # Examples
///
/// ```
/// use spindle::net::{Server, Spread};
///
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let server = Server::builder()
///         .spread(Spread::HandOff)
///         .bind("127.0.0.1:0", |_conn| {})?;
///     assert_eq!(server.spread(), Spread::HandOff);
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Spread {
    /// A listener per worker, bound with `SO_REUSEPORT`; the kernel
    /// spreads the connections. The default.
    #[default]
    ReusePort,
    /// One acceptor; each connection is handed to the worker with the
    /// fewest live fibers.
    HandOff,
}

type ErrorHook = Arc<dyn Fn(&io::Error) + Send + Sync>;
type Handler = Arc<dyn Fn(TcpStream) + Send + Sync>;

/// The settings of a [`Server`]: how connections are spread and what to do
/// with accept errors.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use spindle::net::{Server, Spread, TcpStream};
///
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let server = Server::builder()
///         .spread(Spread::ReusePort)
///         .on_error(|e| eprintln!("accept: {e}"))
///         .bind("127.0.0.1:0", |mut conn| {
///             let _ = conn.write_all(b"hi");
///         })?;
///     let mut reply = String::new();
///     TcpStream::connect(server.local_addr())?.read_to_string(&mut reply)?;
///     assert_eq!(reply, "hi");
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct ServerBuilder {
    spread: Spread,
    on_error: Option<ErrorHook>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("spread", &self.spread)
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

impl ServerBuilder {
    /// How connections reach the workers (default [`Spread::ReusePort`]).
    ///
    /// # Examples
    ///
    /// See [`Spread`].
    pub fn spread(mut self, spread: Spread) -> ServerBuilder {
        self.spread = spread;
        self
    }

    /// Called (on the acceptor's worker) with every accept error that does
    /// not concern a single connection: running out of fds or memory,
    /// before the acceptor backs off, and the error that ends an acceptor.
    /// The default writes one line to stderr.
    ///
    /// # Examples
    ///
    /// See [`ServerBuilder`].
    pub fn on_error<F>(mut self, hook: F) -> ServerBuilder
    where
        F: Fn(&io::Error) + Send + Sync + 'static,
    {
        self.on_error = Some(Arc::new(hook));
        self
    }

    /// Binds `addr` (port 0: any free port, the same on every worker) and
    /// starts serving: each connection runs `handler` in a fiber of its
    /// own on the worker that took it. Returns once every listener is
    /// bound, so a client may connect at once.
    ///
    /// # Examples
    ///
    /// See [`ServerBuilder`] and [`Server`].
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Errors
    ///
    /// What binding returns, with the address and the worker in the
    /// message and the kind kept ([`io::ErrorKind::AddrInUse`], ...);
    /// an error starting an acceptor fiber (no stack). Nothing is left
    /// listening after an error.
    #[track_caller]
    pub fn bind<A, H>(self, addr: A, handler: H) -> io::Result<Server>
    where
        A: ToSocketAddrs,
        H: Fn(TcpStream) + Send + Sync + 'static,
    {
        let workers = crate::worker_count();
        let on_error = self.on_error.unwrap_or_else(|| Arc::new(default_hook));
        let handler: Handler = Arc::new(handler);
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let listeners = match self.spread {
            Spread::ReusePort => bind_group(&addrs, workers)?,
            Spread::HandOff => {
                vec![TcpListener::bind(&addrs[..]).map_err(|e| context(e, &addrs, None))?]
            }
        };
        let local_addr = listeners[0].local_addr()?;
        let mut server = Server {
            local_addr,
            spread: self.spread,
            acceptors: Vec::with_capacity(listeners.len()),
        };
        let here = crate::current_worker();
        for (i, listener) in listeners.into_iter().enumerate() {
            let worker = match self.spread {
                Spread::ReusePort => i,
                Spread::HandOff => here,
            };
            let acceptor = Acceptor {
                listener,
                handler: Arc::clone(&handler),
                on_error: Arc::clone(&on_error),
                spread: self.spread,
            };
            // On error `server` drops, which closes what was started.
            let h = Builder::new()
                .name(format!("spindle-accept-{local_addr}"))
                .worker(worker)
                .spawn(move || acceptor.run())?;
            server.acceptors.push(h);
        }
        Ok(server)
    }
}

/// One TCP port served from every worker of the runtime: connections are
/// accepted (see [`Spread`]) and each runs a handler in a fiber of its own.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use spindle::net::{Server, TcpStream};
///
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let server = Server::bind("127.0.0.1:0", |mut conn| {
///         let _ = write!(conn, "worker {}", spindle::current_worker());
///     })?;
///     let mut reply = String::new();
///     TcpStream::connect(server.local_addr())?.read_to_string(&mut reply)?;
///     assert!(reply == "worker 0" || reply == "worker 1");
///     server.shutdown(); // every listener is closed when it returns
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// An accept that fails for the connection alone (`ECONNABORTED`, a reset
/// while queued, `EPERM` from a firewall rule) is skipped. Running out of
/// fds or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) is reported to
/// the error hook ([`ServerBuilder::on_error`]; by default a line on
/// stderr) and the acceptor sleeps, 5 ms at first, doubling up to 1 s,
/// before it tries again (as Go's `net/http` does): the connection stays
/// queued in the kernel and is taken once fds are free. Any other error
/// ends that acceptor, and [`Server::wait`] returns it.
///
/// # Dropping
///
/// [`Server::shutdown`] (and dropping the [`Server`]) cancels the acceptor
/// fibers, which closes every listener: new connections are refused.
/// Connections already accepted keep their fibers, which end as their
/// handler returns or when the runtime shuts down. With `ReusePort`,
/// connections still queued in a listener's backlog when it closes are
/// reset by the kernel.
///
/// Dropping it cancels the acceptors (every listener closes, soon after on
/// other workers) without waiting; [`shutdown`](Self::shutdown) waits.
/// Keep it for as long as the port should be served.
///
/// # `Send`
///
/// `Send` and `Sync`: a server may be shut down from any worker or thread.
///
/// ```
/// fn is_send_sync<T: Send + Sync>() {}
/// is_send_sync::<spindle::net::Server>();
/// ```
#[must_use = "dropping the Server stops serving"]
pub struct Server {
    local_addr: SocketAddr,
    spread: Spread,
    acceptors: Vec<SendJoinHandle<io::Result<()>>>,
}

impl Server {
    /// Serves `addr` from every worker with the default settings
    /// ([`Spread::ReusePort`], accept errors to stderr); see
    /// [`ServerBuilder::bind`].
    ///
    /// # Examples
    ///
    /// See [`Server`].
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Errors
    ///
    /// As [`ServerBuilder::bind`].
    #[track_caller]
    pub fn bind<A, H>(addr: A, handler: H) -> io::Result<Server>
    where
        A: ToSocketAddrs,
        H: Fn(TcpStream) + Send + Sync + 'static,
    {
        ServerBuilder::default().bind(addr, handler)
    }

    /// The settings to start a server with.
    ///
    /// # Examples
    ///
    /// See [`ServerBuilder`].
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address served (with the port the kernel chose, for port 0).
    ///
    /// # Examples
    ///
    /// See [`Server`].
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How its connections reach the workers.
    ///
    /// # Examples
    ///
    /// See [`Spread`].
    pub fn spread(&self) -> Spread {
        self.spread
    }

    /// The number of listening sockets: one per worker with
    /// [`Spread::ReusePort`], one with [`Spread::HandOff`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(3).build()?;
    /// rt.block_on(|| -> std::io::Result<()> {
    ///     let server = spindle::net::Server::bind("127.0.0.1:0", |_| {})?;
    ///     assert_eq!(server.listeners(), 3);
    ///     Ok(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listeners(&self) -> usize {
        self.acceptors.len()
    }

    /// Serves until every acceptor has ended: for ever, unless an accept
    /// fails for good (or the runtime shuts down).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| spindle::net::Server::bind("0.0.0.0:8080", |_conn| {})?.wait())?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// The error that ended the first acceptor to fail (the others are
    /// cancelled then); [`io::ErrorKind::Interrupted`] if an acceptor was
    /// cancelled by a runtime shutdown.
    pub fn wait(mut self) -> io::Result<()> {
        let mut acceptors = std::mem::take(&mut self.acceptors).into_iter();
        let mut first = Ok(());
        while let Some(h) = acceptors.next() {
            let r = match h.join() {
                Ok(r) => r,
                Err(JoinError::Panicked(p)) => std::panic::resume_unwind(p),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "spindle::net::Server: an acceptor was cancelled",
                )),
            };
            if r.is_err() && first.is_ok() {
                first = r;
                for other in acceptors.as_slice() {
                    other.cancel();
                }
            }
        }
        first
    }

    /// Stops accepting: cancels every acceptor and waits until each has
    /// closed its listener, so a connect afterwards is refused. Accepted
    /// connections keep running.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| -> std::io::Result<()> {
    ///     let server = spindle::net::Server::bind("127.0.0.1:0", |_| {})?;
    ///     let addr = server.local_addr();
    ///     server.shutdown();
    ///     let refused = spindle::net::TcpStream::connect(addr).unwrap_err();
    ///     assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    ///     Ok(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// A panic of an acceptor (only the handler's own code could raise one
    /// there, and the handler runs in the connection's fiber, so none is
    /// expected) is resumed here.
    pub fn shutdown(mut self) {
        let acceptors = std::mem::take(&mut self.acceptors);
        for h in &acceptors {
            h.cancel();
        }
        for h in acceptors {
            if let Err(JoinError::Panicked(p)) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for h in &self.acceptors {
            h.cancel();
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.local_addr)
            .field("spread", &self.spread)
            .field("listeners", &self.acceptors.len())
            .finish()
    }
}

/// Binds `workers` listeners to `addrs` with `SO_REUSEPORT`: the first to
/// `addr` as given, the others to the address it got (so port 0 gives one
/// port for all).
fn bind_group(addrs: &[SocketAddr], workers: usize) -> io::Result<Vec<TcpListener>> {
    let first = TcpListener::bind_reuseport(addrs).map_err(|e| context(e, addrs, Some(0)))?;
    let at = first.local_addr()?;
    let mut group = Vec::with_capacity(workers);
    group.push(first);
    for w in 1..workers {
        let l = TcpListener::bind_reuseport(at).map_err(|e| context(e, &[at], Some(w)))?;
        group.push(l);
    }
    Ok(group)
}

/// `e` with what was being bound, keeping its kind.
fn context(e: io::Error, addrs: &[SocketAddr], worker: Option<usize>) -> io::Error {
    let addr = match addrs {
        [a] => a.to_string(),
        _ => format!("{addrs:?}"),
    };
    let how = match worker {
        Some(w) => format!(" with SO_REUSEPORT for worker {w}"),
        None => String::new(),
    };
    io::Error::new(
        e.kind(),
        format!("spindle::net::Server: cannot bind {addr}{how}: {e}"),
    )
}

fn default_hook(e: &io::Error) {
    eprintln!("{e}");
}

/// The accept loop of one listener, run in a fiber of its own.
struct Acceptor {
    listener: TcpListener,
    handler: Handler,
    on_error: ErrorHook,
    spread: Spread,
}

/// The first pause after running out of fds or memory; it doubles up to
/// [`MAX_BACKOFF`] while the condition lasts.
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl Acceptor {
    fn run(self) -> io::Result<()> {
        let addr = self.listener.local_addr()?;
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.listener.accept() {
                Ok((conn, _)) => {
                    backoff = MIN_BACKOFF;
                    self.start(conn);
                }
                Err(e) => match Failure::of(&e) {
                    Failure::Connection => {}
                    Failure::Resources => {
                        (self.on_error)(&io::Error::new(
                            e.kind(),
                            format!(
                                "spindle::net::Server on {addr}: accept failed: {e}; retrying in {backoff:?}"
                            ),
                        ));
                        crate::sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    Failure::Fatal => {
                        let e = io::Error::new(
                            e.kind(),
                            format!("spindle::net::Server on {addr}: accept failed: {e}"),
                        );
                        (self.on_error)(&e);
                        return Err(e);
                    }
                },
            }
        }
    }

    /// Starts the fiber that serves `conn`: here (`ReusePort`) or on the
    /// least loaded worker (`HandOff`). A fiber that cannot be had (no
    /// stack) drops the connection.
    fn start(&self, conn: TcpStream) {
        let handler = Arc::clone(&self.handler);
        let serve = move || handler(conn);
        let started = match self.spread {
            Spread::ReusePort => Builder::new().spawn(serve).map(drop),
            Spread::HandOff => Builder::new().balanced().spawn(serve).map(drop),
        };
        if let Err(e) = started {
            (self.on_error)(&io::Error::new(
                e.kind(),
                format!("spindle::net::Server: no fiber for a connection: {e}"),
            ));
        }
    }
}

/// What an accept error means for the acceptor.
enum Failure {
    /// This connection only: skip it.
    Connection,
    /// Out of fds or memory: back off, then try again.
    Resources,
    /// The listener is broken: stop.
    Fatal,
}

impl Failure {
    fn of(e: &io::Error) -> Failure {
        match e.raw_os_error() {
            Some(
                libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::EPERM
                | libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::ETIMEDOUT
                | libc::EINTR,
            ) => Failure::Connection,
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => Failure::Resources,
            _ => Failure::Fatal,
        }
    }
}
