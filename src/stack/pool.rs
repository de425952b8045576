//! The per-thread stack pool: where a dropped [`Stack`](super::Stack) waits
//! to be reused, so that creating a fiber normally costs no syscall and no
//! lock.
//!
//! ## Invariants
//!
//! - Each thread has its own pool (a `thread_local!`), touched only by that
//!   thread: no lock, no atomic read-modify-write on the hot path.
//! - A pool holds at most [`StackPool::MAX_STACKS`] stacks and at most
//!   [`StackPool::MAX_BYTES`] of usable size; a stack that does not fit is
//!   released to the allocator (see `chunk.rs`).
//! - Pooled stacks are kept as they were left (no syscall on the way in or
//!   out), so their touched pages stay resident: the bound is also the
//!   bound on memory a thread keeps for reuse.
//! - Stacks are grouped by (usable size, guard pages and kind), in at most
//!   [`MAX_BUCKETS`] buckets; within a bucket the last stack in is the first
//!   out (its pages are the likeliest to still be in cache).
//! - When the thread exits, its pool is dropped and every stack in it is
//!   released. A stack dropped after that (by a later thread-local
//!   destructor) finds no pool and is released directly.
//! - The pool is borrowed (through an `UnsafeCell`, no borrow flag) only
//!   inside this file's short functions, which call nothing that could
//!   reach the pool again: no `Stack` is dropped, no allocator call is
//!   made, no user code runs while it is borrowed (stacks to release are
//!   handed back to the caller and released after). Signal handlers never
//!   touch it.
//! - `len` is an `AtomicUsize` written only by the owning thread, with
//!   `Relaxed` loads and stores (plain moves); its address is registered in
//!   [`REGISTRY`] at the pool's first push and removed when the pool is
//!   dropped, so that [`StackPool::stats`] can add up every thread's pool
//!   while holding the registry lock.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use super::chunk::{self, Slot};
use super::GuardKind;

/// Most distinct (size, guard) groups one pool keeps.
const MAX_BUCKETS: usize = 8;

/// Pooled stacks of one usable size and guard (pages and kind).
struct Bucket {
    size: usize,
    /// The guard's pages and kind ([`chunk::shape_bits`]).
    shape: usize,
    slots: Vec<Slot>,
}

/// One thread's pool.
struct Pool {
    buckets: Vec<Bucket>,
    /// Stacks in all buckets; read by other threads through [`REGISTRY`].
    len: AtomicUsize,
    /// Usable bytes in all buckets.
    bytes: usize,
    /// Whether `len`'s address is in [`REGISTRY`].
    registered: bool,
}

thread_local! {
    static POOL: UnsafeCell<Pool> = const {
        UnsafeCell::new(Pool {
            buckets: Vec::new(),
            len: AtomicUsize::new(0),
            bytes: 0,
            registered: false,
        })
    };
}

/// The address of a live pool's `len`.
struct PoolLen(*const AtomicUsize);

// SAFETY: the pointer is only dereferenced under the REGISTRY lock, and a
// pool removes its entry (under that lock) before its memory goes away.
unsafe impl Send for PoolLen {}

/// Every live pool's `len`, for [`StackPool::stats`].
static REGISTRY: Mutex<Vec<PoolLen>> = Mutex::new(Vec::new());

/// Runs `f` on this thread's pool; `None` once the pool is destroyed.
#[inline]
fn with_pool<T>(f: impl FnOnce(&mut Pool) -> T) -> Option<T> {
    POOL.try_with(|pool| {
        // SAFETY: only this thread reaches its pool, and never reentrantly:
        // `f` is one of this file's functions, which neither drop a Stack,
        // nor call the allocator, nor run user code (module invariants).
        f(unsafe { &mut *pool.get() })
    })
    .ok()
}

impl Pool {
    #[inline]
    fn take(&mut self, size: usize, pages: usize, kind: Option<GuardKind>) -> Option<Slot> {
        // Either kind will do when none is asked for: compare the pages only.
        let (shape, mask) = match kind {
            Some(kind) => (chunk::shape_bits(pages, kind), !0),
            None => (
                chunk::shape_bits(pages, GuardKind::Madvise),
                !chunk::MPROTECT_BIT,
            ),
        };
        let bucket = self
            .buckets
            .iter_mut()
            .find(|b| b.size == size && b.shape & mask == shape && !b.slots.is_empty())?;
        let slot = bucket.slots.pop()?;
        self.set_len(self.len() - 1);
        self.bytes -= size;
        Some(slot)
    }

    #[inline]
    fn put(&mut self, slot: Slot) -> Result<(), Slot> {
        let size = slot.size();
        let len = self.len();
        if len >= StackPool::MAX_STACKS || self.bytes + size > StackPool::MAX_BYTES {
            return Err(slot);
        }
        let shape = slot.shape();
        let index = match self
            .buckets
            .iter()
            .position(|b| b.size == size && b.shape == shape)
        {
            Some(i) => i,
            None => match self.new_bucket(size, shape) {
                Some(i) => i,
                None => return Err(slot),
            },
        };
        self.buckets[index].slots.push(slot);
        self.set_len(len + 1);
        self.bytes += size;
        if !self.registered {
            self.register();
        }
        Ok(())
    }

    /// Makes room for a bucket, reusing an empty one if all are taken.
    #[cold]
    fn new_bucket(&mut self, size: usize, shape: usize) -> Option<usize> {
        let bucket = Bucket {
            size,
            shape,
            slots: Vec::new(),
        };
        if self.buckets.len() < MAX_BUCKETS {
            self.buckets.push(bucket);
            return Some(self.buckets.len() - 1);
        }
        let i = self.buckets.iter().position(|b| b.slots.is_empty())?;
        self.buckets[i] = bucket;
        Some(i)
    }

    #[inline]
    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Only the owning thread writes `len`, so a load and a store suffice.
    #[inline]
    fn set_len(&self, len: usize) {
        self.len.store(len, Ordering::Relaxed);
    }

    #[cold]
    fn register(&mut self) {
        REGISTRY
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(PoolLen(&self.len));
        self.registered = true;
    }

    /// Empties the pool, returning its stacks.
    fn drain(&mut self) -> Vec<Slot> {
        let mut out = Vec::with_capacity(self.len());
        for bucket in &mut self.buckets {
            out.append(&mut bucket.slots);
        }
        self.set_len(0);
        self.bytes = 0;
        out
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The thread-local is being destroyed: a Stack dropped from here on
        // finds no pool and is released directly. The stacks are released
        // and the pool unregistered under the registry's lock, which
        // `StackPool::stats` also holds while it counts: a count taken while
        // a thread ends sees its pool whole or gone, never half released
        // (it used to see stacks counted both as out and as pooled, and a
        // test comparing two counts failed now and then).
        let registry = self
            .registered
            .then(|| REGISTRY.lock().unwrap_or_else(PoisonError::into_inner));
        for slot in self.drain() {
            chunk::release(slot);
        }
        if let Some(mut registry) = registry {
            let me: *const AtomicUsize = &self.len;
            if let Some(i) = registry.iter().position(|p| p.0 == me) {
                registry.swap_remove(i);
            }
        }
    }
}

/// Takes a pooled stack of `size` usable bytes and a guard of `pages` (of
/// `kind`, if given) from this thread's pool. No syscall, no lock.
#[inline]
pub(super) fn take(size: usize, pages: usize, kind: Option<GuardKind>) -> Option<Slot> {
    with_pool(|pool| pool.take(size, pages, kind)).flatten()
}

/// Puts a stack into this thread's pool; gives it back if the pool is full
/// or gone (thread exiting). No syscall, no lock (bar the pool's first
/// push on a thread, which registers it for [`StackPool::stats`]).
#[inline]
pub(super) fn put(slot: Slot) -> Result<(), Slot> {
    let mut slot = Some(slot);
    with_pool(|pool| {
        if let Some(s) = slot.take() {
            slot = pool.put(s).err();
        }
    });
    match slot {
        None => Ok(()),
        Some(s) => Err(s),
    }
}

/// The per-thread pools of free stacks, seen from outside: their bounds and
/// statistics.
///
/// Every thread keeps up to [`MAX_STACKS`](StackPool::MAX_STACKS) dropped
/// stacks (at most [`MAX_BYTES`](StackPool::MAX_BYTES) of usable size) for
/// [`Stack::new`](super::Stack::new) to reuse without a syscall. The pool of
/// a thread is emptied when the thread exits.
///
/// ## Why these bounds
///
/// A scheduler creates and ends fibers in bursts; 256 stacks cover the
/// fibers a burst typically ends before the next begins, so steady-state
/// spawning never reaches the allocator. Pooled stacks keep the pages they
/// touched, so the byte budget caps what a thread holds back: at most
/// 64 MiB of address space per thread, and in practice a few pages per
/// stack (about 2 MiB for 256 stacks that each touched 8 KiB).
#[derive(Debug)]
pub struct StackPool {
    _private: (),
}

impl StackPool {
    /// Most stacks one thread's pool keeps.
    pub const MAX_STACKS: usize = 256;

    /// Most usable bytes one thread's pool keeps (64 MiB: 256 stacks of the
    /// default size).
    pub const MAX_BYTES: usize = 64 << 20;

    /// Process-wide counts of stacks: a snapshot, exact when no other thread
    /// creates or drops stacks at the same time.
    pub fn stats() -> StackStats {
        // The registry's lock first (as an ending thread's pool takes it
        // around its releases), then the allocator's.
        let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        let counters = chunk::counters();
        let pooled = registry
            .iter()
            // SAFETY: registered pools are alive while the lock is held.
            .map(|p| unsafe { (*p.0).load(Ordering::Relaxed) })
            .sum::<usize>();
        drop(registry);
        let out = counters.allocated.saturating_sub(counters.released) as usize;
        StackStats {
            live: out.saturating_sub(pooled),
            pooled,
            pooled_here: StackPool::pooled_here(),
            chunks: counters.chunks,
            mapped_bytes: counters.mapped_bytes,
            retained_bytes: counters.retained_bytes,
            dirty_bytes: counters.dirty_bytes,
            allocated: counters.allocated,
            released: counters.released,
        }
    }

    /// Stacks in this thread's pool.
    pub fn pooled_here() -> usize {
        with_pool(|pool| pool.len()).unwrap_or(0)
    }

    /// Releases every stack in this thread's pool: their memory goes back to
    /// the system, and chunks with no stack left are unmapped.
    pub fn clear() {
        let slots = with_pool(Pool::drain).unwrap_or_default();
        for slot in slots {
            chunk::release(slot);
        }
    }
}

/// Process-wide counts of stacks, from [`StackPool::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StackStats {
    /// [`Stack`](super::Stack) values that exist now (created and not yet
    /// dropped). Zero when nothing leaks.
    pub live: usize,
    /// Stacks waiting in the pools of all threads.
    pub pooled: usize,
    /// Stacks waiting in this thread's pool.
    pub pooled_here: usize,
    /// Chunks (mappings) the allocator holds.
    pub chunks: usize,
    /// Address space those chunks reserve, in bytes (not memory used: only
    /// touched pages cost memory).
    pub mapped_bytes: usize,
    /// Slot bytes of stacks given back to a chunk that is still mapped but
    /// whose pages were kept for reuse rather than discarded (bounded; the
    /// memory really kept is only what those stacks had touched).
    pub retained_bytes: usize,
    /// Slot bytes of stacks given back beyond that budget whose pages are
    /// not discarded yet: they are discarded in batches (bounded, 64 MiB).
    pub dirty_bytes: usize,
    /// Stacks ever handed out by the allocator (not counting reuse from a
    /// pool, which never reaches it).
    pub allocated: u64,
    /// Stacks ever given back to the allocator.
    pub released: u64,
}
