//! The real libc functions behind the hooks, found with
//! `dlsym(RTLD_NEXT, name)` once, from an `.init_array` constructor that
//! runs before `main`.
//!
//! ## Invariants
//!
//! - Every pointer in [`REAL`] is either null (not resolved yet) or the
//!   address of the libc function of that name and C signature, and once set
//!   it never changes.
//! - They are resolved eagerly, all at once ([`resolve`]), never lazily
//!   inside a hook on a fiber: `dlsym` may allocate and take the loader's
//!   lock. The constructor runs before `main`; a hooked call made even
//!   earlier (another library's constructor) resolves them on the spot, which
//!   is still before `main`, where no fiber can exist.
//! - A name that cannot be resolved (a statically linked binary, where
//!   `RTLD_NEXT` finds nothing) aborts the process with a message: a hook
//!   with nowhere to pass its call to could only fail every call.
//!
//! The accessors below ([`read`], [`recv`], ...) call through these pointers,
//! so they are also how spindle's own reactor, timers and sockets reach the
//! kernel without going through a hook (see `crate::sys`).

use std::ffi::CStr;
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{c_int, c_uint, c_ulong, c_void, iovec, msghdr, nfds_t, pollfd, size_t, sockaddr};
use libc::{sigset_t, socklen_t, ssize_t, timespec};

/// Declares the table of real functions and one typed accessor per entry.
macro_rules! real_functions {
    ($( $idx:literal $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        /// The names, in table order, NUL-terminated for `dlsym`.
        const NAMES: &[&CStr] = &[$(
            // SAFETY: the literal ends in exactly one NUL, its only NUL.
            unsafe { CStr::from_bytes_with_nul_unchecked(concat!(stringify!($name), "\0").as_bytes()) },
        )*];

        $(
            #[doc = concat!("Calls libc's own `", stringify!($name), "`, never the hook.")]
            ///
            /// # Safety
            ///
            /// As the libc function of that name: the pointers must be valid
            /// for what it reads and writes.
            #[inline]
            pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
                let f = get($idx);
                // SAFETY: `get` returns the address `dlsym` gave for this
                // name, whose C signature is the one written here (module
                // invariants); the caller upholds the function's contract.
                unsafe {
                    let f: unsafe extern "C" fn($($ty),*) -> $ret = std::mem::transmute(f);
                    f($($arg),*)
                }
            }
        )*
    };
}

real_functions! {
    0 read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    1 readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    2 recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    3 recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    4 recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    5 write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    6 writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    7 send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    8 sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t;
    9 sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    10 connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    11 accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    12 accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    13 poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    14 ppoll(fds: *mut pollfd, n: nfds_t, timeout: *const timespec, mask: *const sigset_t) -> c_int;
    15 nanosleep(req: *const timespec, rem: *mut timespec) -> c_int;
    16 clock_nanosleep(clock: libc::clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int;
    17 sleep(secs: c_uint) -> c_uint;
    18 usleep(usecs: libc::useconds_t) -> c_int;
    19 fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int;
    20 fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int;
    21 ioctl(fd: c_int, request: c_ulong, arg: c_ulong) -> c_int;
    22 setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: socklen_t) -> c_int;
    23 close(fd: c_int) -> c_int;
    24 dup(fd: c_int) -> c_int;
    25 dup2(old: c_int, new: c_int) -> c_int;
    26 dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
}

/// How many functions the table holds.
const COUNT: usize = 27;

/// The resolved addresses, in the order of `NAMES` (module invariants).
static REAL: [AtomicPtr<c_void>; COUNT] = [UNRESOLVED; COUNT];

/// An unresolved entry (a `const` so the array above can repeat it).
#[allow(clippy::declare_interior_mutable_const)]
const UNRESOLVED: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// The address of entry `idx`, resolving the whole table first if the
/// constructor has not run yet (only possible before `main`).
#[inline(always)]
fn get(idx: usize) -> *mut c_void {
    let f = REAL[idx].load(Ordering::Acquire);
    if f.is_null() {
        resolve();
        return REAL[idx].load(Ordering::Acquire);
    }
    f
}

/// Resolves every entry (idempotent; concurrent callers store the same
/// values).
fn resolve() {
    const _: () = assert!(NAMES.len() == COUNT);
    for (slot, name) in REAL.iter().zip(NAMES) {
        if !slot.load(Ordering::Acquire).is_null() {
            continue;
        }
        // SAFETY: `name` is NUL-terminated; RTLD_NEXT searches the objects
        // loaded after this one, where libc's definitions are.
        let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
        if f.is_null() {
            unresolved(name);
        }
        slot.store(f, Ordering::Release);
    }
}

/// Aborts with a message naming `name` (module invariants).
#[cold]
fn unresolved(name: &CStr) -> ! {
    let parts: [&[u8]; 3] = [
        b"spindle (feature \"hook\"): dlsym(RTLD_NEXT) cannot find libc's `",
        name.to_bytes(),
        b"`; the hook needs a dynamically linked glibc (not a static binary)\n",
    ];
    for p in parts {
        // SAFETY: writes `p.len()` bytes from a live slice; the raw syscall
        // cannot reach a hook.
        unsafe { libc::syscall(libc::SYS_write, 2, p.as_ptr(), p.len()) };
    }
    std::process::abort()
}

/// The constructor: runs before `main` (and before any Rust code of the
/// program's), from the ELF `.init_array`.
extern "C" fn init() {
    resolve();
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

/// Whether the table has been resolved (by the constructor, in any program
/// that links the hooks).
pub(crate) fn resolved() -> bool {
    REAL.iter().all(|f| !f.load(Ordering::Acquire).is_null())
}
