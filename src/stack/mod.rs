//! Fiber stacks: mmap'd memory with a guard region at the low end, a
//! per-thread pool that reuses them without syscalls, and the handler that
//! turns a fiber's stack overflow into a report instead of a bare `SIGSEGV`.
//!
//! # Layout
//!
//! Stacks live in *slots*, and slots in *chunks*: one `mmap` holds many slots
//! of one size (one slot per chunk for mprotect guards, below). A stack grows
//! down, from [`Stack::base`] toward [`Stack::limit`]; the page(s) just below
//! the limit are its guard.
//!
//! ```text
//!  low addresses                                                 high addresses
//!  chunk start                                                        chunk end
//!  |<-------- slot 0 -------->|<-------- slot 1 -------->|     |<-- slot n-1 -->|
//!  +-------+------------------+-------+------------------+ ... +-------+--------+
//!  | guard | usable  <- grows |  guard | usable <- grows |     | guard | usable |
//!  +-------+------------------+-------+------------------+ ... +-------+--------+
//!  ^       ^                  ^       ^
//!  |       limit() of 0       |       limit() of 1
//!  guard() of 0               base() of 0 == guard() start of 1
//! ```
//!
//! A stack that runs past its limit touches its own guard; one that pops
//! past its base touches the next slot's guard. Either way the access faults.
//!
//! # Invariants
//!
//! - Every [`Stack`] has a guard of at least one page installed below
//!   [`limit`](Stack::limit) for its whole life, whether it came fresh from a
//!   chunk or from a pool.
//! - [`base`](Stack::base) and [`limit`](Stack::limit) are page-aligned (so
//!   16-byte aligned, as both ABIs want), and
//!   `base - limit == size`, a multiple of the page size.
//! - A stack's memory is used by its owner only. Each slot is owned by
//!   exactly one of: a `Stack`, a thread's pool, or the allocator.
//! - A stack from a pool holds whatever its last user left there; a stack
//!   from the allocator reads as zeros if it is fresh or was discarded,
//!   and holds its last user's data if it was retained (see `chunk.rs`).
//! - A chunk is mapped exactly while one of its stacks is out (created and
//!   not given back to the allocator); see `chunk.rs`.
//!
//! # Guard regions
//!
//! [`GuardKind::Madvise`] uses `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+),
//! which marks pages inaccessible *without splitting the mapping*: all the
//! stacks of a chunk share one of the process's `vm.max_map_count` maps
//! (65,530 by default), so the number of fibers is bounded by memory, not
//! by maps. [`GuardKind::Mprotect`] is the fallback: a mapping per stack and
//! `mprotect(PROT_NONE)` on its guard, two maps per stack, so about 32,000
//! stacks per process at the default limit. The fallback is used when the
//! kernel answers `EINVAL` and when a once-per-process probe finds that the
//! guard is not enforced (qemu-user accepts any `madvise` and does nothing):
//! see [`GuardKind::preferred`].
//!
//! # Guard size and stack probes
//!
//! The stacks of a chunk are adjacent: below a stack's guard lies the top of
//! the stack below it, where that fiber keeps its bookkeeping (its
//! overflow record, closure and parent link). A guard catches a fiber only
//! if the fiber touches it, so a frame larger than the guard whose first
//! store lands *below* the guard writes into the neighbour without a fault.
//!
//! - **Rust code cannot do that.** rustc gives every function whose frame is
//!   larger than a page a stack probe (LLVM's `probe-stack`, inline on
//!   x86_64 and aarch64; `__rust_probestack` in older releases): the
//!   prologue moves the stack pointer down one page at a time and touches
//!   each page, so the first page past the limit that it touches is the
//!   guard's. Checked on rustc 1.95 for a 64 KiB frame: a loop of
//!   `sub $4096, %rsp; movq $0, (%rsp)` (x86_64), `sub sp, sp, #4096;
//!   str xzr, [sp]` (aarch64).
//! - **C and C++ code can**, unless compiled with
//!   `-fstack-clash-protection` (GCC 8+, Clang 11+), which adds the same
//!   probes. It is off by default upstream, and some distributions turn it
//!   on (Fedora, Ubuntu); Debian 12's GCC 12 does not: a 64 KiB local
//!   array there compiles to one `sub $65544, %rsp` followed by a `call`,
//!   whose return address is stored 64 KiB below the old stack pointer.
//!   `alloca` and variable-length arrays do the same.
//!
//! A fiber that runs such C code with frames of up to `N` pages needs a
//! guard of more than `N` pages: [`Stack::with_guard_pages`], or
//! `guard_pages` on the runtime's and the task's builders. The default stays
//! one page (what threads get from glibc, too). A larger guard costs
//! address space and page-table entries, not memory; with madvise guards,
//! installing it costs time per page, once per fresh slot (a pooled or
//! retained stack is reused with its guard in place). Measured by
//! `cargo run --release --example guard_cost` (10,000 fresh 64 KiB stacks;
//! figures in BENCHMARKS.md): taking a fresh stack costs about 0.3 µs with
//! one guard page, 2.2 µs with 16, 16 µs with 256; page tables grow from
//! 1.3 to 2.5 MiB (16 pages) for the 10,000; the number of memory maps
//! does not change (one per chunk with madvise guards, two per stack with
//! mprotect ones, whatever the guard size).
//!
//! # The default size, 256 KiB
//!
//! A stack cannot grow, so it must fit the deepest thing ordinary Rust code
//! does, with room to spare: capturing and symbolizing a backtrace on panic
//! (DWARF parsing), `format!` chains, `std::io::copy`'s 8 KiB buffer.
//! Measured inside a fiber (x86_64, debug build), capturing, symbolizing and
//! formatting a backtrace and then an `io::copy` touch about 21 KiB, so the
//! default leaves more than ten times that for the fiber's own frames.
//! Only touched pages cost memory; the rest is
//! address space (`MAP_NORESERVE`), of which a million 256 KiB stacks take
//! 260 GiB out of 128 TiB. [`Stack::MIN_SIZE`] (16 KiB) leaves room for a
//! signal frame (AVX-512 or SVE state is several KiB) and a few small frames
//! above the coroutine's own bookkeeping.
//!
//! # Cost of each path
//!
//! | operation | syscalls | locks |
//! |---|---|---|
//! | [`Stack::new`], a pooled stack of that size exists | 0 | 0 |
//! | [`Stack::new`], a freed slot exists in a chunk | 0 | allocator mutex |
//! | [`Stack::new`], fresh slot (madvise) | per batch of up to 64 fresh slots: 1 `process_madvise` installing their guards, 1 populating their top pages (one `madvise` per slot where the kernel lacks vector advice); + 1 `mmap` per new chunk | allocator mutex |
//! | [`Stack::new`], mprotect guards | `mmap` + `mprotect` | allocator mutex |
//! | drop, pool has room | 0 | 0 |
//! | drop, pool full | none while the retained budget lasts (64 MiB of slots); past it one `madvise(MADV_DONTNEED)` per batch of 64 (one per run of adjacent slots); `munmap` if the chunk empties | allocator mutex |
//! | first stack of the process | + the guard probe: 7 syscalls, once | |
//! | first coroutine of a thread | + `sigaltstack` (+ handler install, once per process) | |
//!
//! The pool's bounds are on [`StackPool`].
//!
//! # valgrind and AddressSanitizer
//!
//! A stack handed out (fresh or from a pool) is announced to the tool the
//! program runs under, and withdrawn when it is dropped: registered with
//! valgrind under the `valgrind` feature (`valgrind.rs`), its ASan shadow
//! cleared in ASan builds (`asan.rs`, which also annotates every fiber
//! switch for the coroutine layer). Without either, nothing is compiled in.
//!
//! # Stack overflow
//!
//! The `overflow` submodule (crate-private) installs, once per process, a
//! `SIGSEGV`/`SIGBUS` handler running on an alternate signal stack. A fault
//! in the guard of the stack the faulting thread runs on prints
//! `fiber '<name>' overflowed its <N> KiB stack` and aborts (the handler
//! finds the stack's slot from the fault address, through a table of the
//! mapped chunks, and the name at the slot's top, so switches keep no
//! record of the running fiber); any other fault
//! goes to the handler that was installed before (normally Rust's own, which
//! reports overflows of ordinary threads). Creating a coroutine installs it;
//! [`install_overflow_handler`] does it explicitly.

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

mod advice;
mod altstack;
#[cfg(spindle_asan)]
pub(crate) mod asan;
mod chunk;
mod chunk_table;
mod error;
mod guard;
pub mod high_water;
pub(crate) mod overflow;
mod pool;
pub mod shadow;
#[cfg(feature = "valgrind")]
mod valgrind;

pub use error::StackError;
pub use guard::GuardKind;
pub use high_water::{set_high_water_tracking, HighWater};
pub use pool::{StackPool, StackStats};

use chunk::Slot;

/// A fiber stack: a page-aligned region of memory with a guard region below
/// it.
///
/// Dropping a `Stack` puts it in the current thread's pool
/// ([`StackPool`]) for [`Stack::new`] to reuse; when that pool is full, its
/// memory goes back to the system.
///
/// # Examples
///
/// ```
/// use spindle::stack::Stack;
///
/// let stack = Stack::new(64 * 1024)?;
/// assert_eq!(stack.size(), 64 * 1024);
/// assert_eq!(stack.base() as usize - stack.limit() as usize, stack.size());
/// assert_eq!(stack.guard().end, stack.limit() as usize);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Dropping
///
/// Never panics. Goes to this thread's pool if it has room (no syscall),
/// else back to the allocator (`MADV_DONTNEED` on the usable pages, and
/// `munmap` of the chunk when it was the last stack of it).
///
/// # `Send`
///
/// A `Stack` is only memory, so it is `Send` and `Sync`; one dropped on
/// another thread goes to that thread's pool.
pub struct Stack {
    slot: Slot,
    /// Painted when handed out, for an exact high-water mark
    /// (`high_water.rs`).
    painted: bool,
    /// Its registration as a stack (see `valgrind.rs`).
    #[cfg(feature = "valgrind")]
    valgrind: valgrind::Registration,
}

/// The page size, read once.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The system's page size.
#[inline]
pub(crate) fn page_size() -> usize {
    match PAGE_SIZE.load(Ordering::Relaxed) {
        0 => read_page_size(),
        page => page,
    }
}

#[cold]
fn read_page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = if page > 0 { page as usize } else { 4096 };
    PAGE_SIZE.store(page, Ordering::Relaxed);
    page
}

impl Stack {
    /// The usable size of a stack when none is given: 256 KiB. See the
    /// [module documentation](self#the-default-size-256-kib) for why.
    pub const DEFAULT_SIZE: usize = 256 * 1024;

    /// The smallest usable size accepted: 16 KiB.
    pub const MIN_SIZE: usize = 16 * 1024;

    /// The largest usable size accepted: 128 TiB, the whole user address
    /// space of x86_64 (and of aarch64 with 48-bit addresses). Beyond it,
    /// page rounding plus the guard could overflow.
    pub const MAX_SIZE: usize = 1 << 47;

    /// Guard pages below a stack when none are asked for: one. See "Guard
    /// size and stack probes" in the [module docs](self) for when more are
    /// worth it.
    pub const DEFAULT_GUARD_PAGES: usize = 1;

    /// The most guard pages a stack may have: 2,048 (8 MiB of 4 KiB pages).
    pub const MAX_GUARD_PAGES: usize = 2048;

    /// A stack with at least `size` usable bytes (rounded up to whole pages)
    /// and a guard of the [preferred](GuardKind::preferred) kind.
    ///
    /// Takes a stack of the same rounded size from this thread's pool when
    /// there is one: no syscall, no lock.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] if `size` is 0, below
    ///   [`MIN_SIZE`](Stack::MIN_SIZE) or above
    ///   [`MAX_SIZE`](Stack::MAX_SIZE);
    /// - the OS error's kind (usually [`io::ErrorKind::OutOfMemory`]) with a
    ///   [`StackError`] inside if the memory cannot be mapped or guarded; its
    ///   message names the likely cause (`vm.max_map_count` or `RLIMIT_AS`);
    /// - [`io::ErrorKind::Unsupported`] if the process runs with shadow
    ///   stacks, which spindle's switch cannot work with ([`shadow`]).
    #[inline]
    pub fn new(size: usize) -> io::Result<Stack> {
        let size = round_size(size)?;
        match pool::take(size, Stack::DEFAULT_GUARD_PAGES, None) {
            Some(slot) => Ok(Stack::handed_out(slot)),
            None => Stack::fresh(size, Stack::DEFAULT_GUARD_PAGES, None),
        }
    }

    /// The size a stack of `size` bytes with a guard of `pages` pages would
    /// have (rounded up to pages), or the error [`Stack::with_guard_pages`]
    /// would return for these arguments, without taking a stack: for
    /// callers that take the stack later (a fiber takes its own at its
    /// first resume) but report bad arguments at once.
    pub(crate) fn check_args(size: usize, pages: usize) -> io::Result<usize> {
        check_guard_pages(pages)?;
        round_size(size)
    }

    /// A stack like [`Stack::new`]'s with a guard of `pages` pages instead
    /// of one, for fibers that call C code with large frames (see "Guard
    /// size and stack probes" in the [module docs](self)).
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::stack::Stack;
    ///
    /// let page = Stack::new(64 * 1024)?.guard().len(); // the default: one page
    /// let stack = Stack::with_guard_pages(64 * 1024, 16)?;
    /// assert_eq!(stack.guard().len(), 16 * page);
    /// assert_eq!(stack.guard().end, stack.limit() as usize);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Stack::new`], and [`io::ErrorKind::InvalidInput`] if `pages` is
    /// 0 or above [`MAX_GUARD_PAGES`](Stack::MAX_GUARD_PAGES).
    pub fn with_guard_pages(size: usize, pages: usize) -> io::Result<Stack> {
        let size = round_size(size)?;
        check_guard_pages(pages)?;
        match pool::take(size, pages, None) {
            Some(slot) => Ok(Stack::handed_out(slot)),
            None => Stack::fresh(size, pages, None),
        }
    }

    /// A stack like [`Stack::new`]'s whose guard is made by `kind`.
    ///
    /// # Errors
    ///
    /// As [`Stack::new`], and [`io::ErrorKind::Unsupported`] for
    /// [`GuardKind::Madvise`] where madvise guards are not enforced (see
    /// [`GuardKind::is_available`]).
    pub fn with_guard(size: usize, kind: GuardKind) -> io::Result<Stack> {
        let size = round_size(size)?;
        let pages = Stack::DEFAULT_GUARD_PAGES;
        match pool::take(size, pages, Some(kind)) {
            Some(slot) => Ok(Stack::handed_out(slot)),
            None => Stack::fresh(size, pages, Some(kind)),
        }
    }

    /// A stack from the allocator (the pool had none).
    #[cold]
    fn fresh(size: usize, pages: usize, kind: Option<GuardKind>) -> io::Result<Stack> {
        shadow::check()?;
        let slot = match kind {
            Some(GuardKind::Madvise) if !GuardKind::Madvise.is_available() => {
                return Err(error::madvise_unsupported())
            }
            Some(kind) => chunk::allocate(size, pages, kind)?,
            None => {
                let kind = GuardKind::preferred();
                match chunk::allocate(size, pages, kind) {
                    // The kernel turned madvise guards down after all (and
                    // the process is now demoted to mprotect): use those.
                    Err(_) if kind == GuardKind::Madvise && !kind.is_available() => {
                        chunk::allocate(size, pages, GuardKind::Mprotect)?
                    }
                    other => other?,
                }
            }
        };
        Ok(Stack::handed_out(slot))
    }

    /// Wraps a slot just taken from a pool or the allocator, and tells
    /// valgrind or ASan (when built for them) that it is a stack in use.
    #[inline(always)]
    fn handed_out(slot: Slot) -> Stack {
        #[cfg(spindle_asan)]
        asan::unpoison(slot.limit(), slot.size());
        let painted = high_water::tracking() && paint(&slot);
        Stack {
            painted,
            #[cfg(feature = "valgrind")]
            valgrind: valgrind::Registration::register(
                slot.limit(),
                slot.limit().wrapping_add(slot.size()),
            ),
            slot,
        }
    }

    /// The highest address of the stack, exclusive: where a fiber's stack
    /// pointer starts. Page-aligned, hence 16-byte aligned.
    #[inline]
    pub fn base(&self) -> *mut u8 {
        self.limit().wrapping_add(self.slot.size())
    }

    /// The lowest usable address, just above the guard.
    #[inline]
    pub fn limit(&self) -> *mut u8 {
        self.slot.limit()
    }

    /// Usable bytes (`base - limit`): the requested size rounded up to pages.
    #[inline]
    pub fn size(&self) -> usize {
        self.slot.size()
    }

    /// The guard region's addresses: `limit - guard size .. limit`. Any
    /// access there faults.
    #[inline]
    pub fn guard(&self) -> Range<usize> {
        let limit = self.slot.limit() as usize;
        limit - self.slot.guard_len()..limit
    }

    /// How the guard was made.
    #[inline]
    pub fn guard_kind(&self) -> GuardKind {
        self.slot.kind()
    }
}

impl Drop for Stack {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "valgrind")]
        self.valgrind.deregister(self.limit(), self.base());
        #[cfg(spindle_asan)]
        asan::unpoison(self.limit(), self.size());
        if let Err(slot) = pool::put(self.slot.take()) {
            chunk::release(slot);
        }
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("limit", &self.limit())
            .field("base", &self.base())
            .field("size", &self.size())
            .field("guard_kind", &self.guard_kind())
            .finish()
    }
}

/// Paints a slot just handed out (tracking is on: `high_water.rs`).
#[cold]
#[inline(never)]
fn paint(slot: &Slot) -> bool {
    // SAFETY: the slot was just taken from a pool or the allocator, so its
    // usable range is ours and nothing runs on it yet.
    unsafe { high_water::paint(slot.limit(), slot.size()) }
}

/// Validates a guard's page count.
fn check_guard_pages(pages: usize) -> io::Result<()> {
    if (1..=Stack::MAX_GUARD_PAGES).contains(&pages) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a stack guard of {pages} pages: it takes 1 to {} pages",
                Stack::MAX_GUARD_PAGES
            ),
        ))
    }
}

/// Validates `size` and rounds it up to whole pages.
#[inline]
fn round_size(size: usize) -> io::Result<usize> {
    if !(Stack::MIN_SIZE..=Stack::MAX_SIZE).contains(&size) {
        return Err(error::bad_size(size));
    }
    let page = page_size();
    // Cannot overflow: size <= 2^47 and the page size is far below 2^16.
    Ok((size + page - 1) & !(page - 1))
}

/// Installs spindle's stack-overflow reporter (once per process) and gives
/// this thread an alternate signal stack if it has none.
///
/// Creating a coroutine does this by itself; call it only to have the
/// handler in place earlier, for example before other code installs its own
/// `SIGSEGV` handler that should chain to spindle's. Cheap after the first
/// call on a thread (one thread-local check).
pub fn install_overflow_handler() {
    overflow::ensure_installed();
}
