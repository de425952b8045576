//! The slot allocator: chunks of address space carved into stack slots.
//!
//! This is the slow path behind the per-thread pool: it runs when a pool has
//! no stack of the wanted size, and when a pool is full and a stack goes back.
//!
//! ## Glossary
//!
//! - **slot**: `guard + usable` bytes, page-aligned; the guard (one page by
//!   default, [`MAX_GUARD_PAGES`](super::Stack::MAX_GUARD_PAGES) at most) at
//!   the low end.
//! - **chunk**: one `mmap` (`MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
//!   MAP_STACK`) holding `nslots` slots of one size and one [`GuardKind`].
//!   Madvise chunks start at [`FIRST_SLOTS`] slots and double per class up to
//!   [`CHUNK_BYTES`]; mprotect chunks always hold one slot (the protection
//!   change splits the mapping anyway, so packing gains nothing).
//! - **class**: all chunks of one (usable size, guard pages, guard kind,
//!   home).
//! - **home**: which of [`HOMES`] groups of threads a class serves. Each
//!   thread takes its fresh slots from chunks of its own home, so the stacks
//!   of one worker lie side by side: when they end together (a burst of
//!   fibers on that worker), their dirty slots form adjacent runs, and one
//!   `madvise` discards a whole batch. Shared chunks interleaved two
//!   workers' stacks slot by slot, so every discard was one `madvise` per
//!   slot, each a TLB shootdown (an IPI to the other core) once the process
//!   has two threads: half the time of 100,000 sleepers on two workers went
//!   there. A slot may still be given back by any thread.
//!
//! ## Invariants (all state is under the one [`ALLOCATOR`] mutex)
//!
//! - A slot is in exactly one of six states: *fresh* (index `>=
//!   chunk.fresh`: never handed out, no guard yet, untouched), *out* (owned
//!   by one [`Slot`] value: a `Stack` or a thread's pool), *retained* (in
//!   `chunk.retained`: guard installed, its pages kept as its last user
//!   left them), *dirty* (in `chunk.dirty`: given back beyond the retained
//!   budget, pages not discarded *yet*), *discarding* (taken from `dirty` by
//!   one releaser, which discards their pages outside the lock; counted in
//!   `chunk.live` meanwhile, so the chunk cannot be unmapped under the
//!   `madvise`), or *free* (in `chunk.free`: guard installed, usable pages
//!   reading as zero: discarded with `MADV_DONTNEED`, or never touched
//!   since a batch prepared them, below).
//! - Fresh slots are prepared in batches ([`prepare`]): the taker installs
//!   the guards of the chunk's next fresh slots (as many as the chunk has
//!   handed out so far, 1, 1, 2, 4..., at most [`PREPARE_MAX`]) with one
//!   vector call (`advice.rs`) under the lock, takes the first and makes
//!   the others free; after the lock it populates the batch's top pages
//!   with one more call. So the memory of prepared slots never used is at
//!   most one page each, fewer slots than the chunk has handed out, and
//!   it goes with the chunk. `chunk.fresh` only grows by slots whose guard
//!   is installed.
//! - A returned slot is *retained* rather than discarded while the
//!   retained slots of all chunks stay within [`RETAINED_BYTES`]. That
//!   bounds the memory kept, and saves the `madvise` (a system call and a TLB
//!   flush) for the common case of many fibers ending together: their chunks
//!   empty and are unmapped whole, and a retained slot taken again costs no
//!   page fault. `retained_bytes` is the sum of their slot sizes.
//! - Dirty slots are discarded in batches: when a chunk has [`DIRTY_BATCH`]
//!   of them, or all chunks together more than [`DIRTY_BYTES`], the
//!   releaser takes that chunk's dirty slots and discards them with one
//!   `madvise` per run of adjacent slots (the guard pages inside a run are
//!   discarded too, which is harmless: guard markers survive
//!   `MADV_DONTNEED`, and an mprotect chunk holds one slot). A chunk that
//!   empties first takes its dirty slots with it, with no `madvise` at all:
//!   the usual end of a burst of fibers. `dirty_bytes` is the sum of their
//!   slot sizes, so the memory they hold is bounded by `DIRTY_BYTES`.
//! - `chunk.live` is the number of *out* and *discarding* slots. A chunk
//!   with `live == 0` is unmapped at once: the chunk is mapped exactly while
//!   a stack of it is out.
//! - A slot's guard is installed before the slot is handed out, and stays for
//!   as long as the chunk is mapped (guard markers survive `MADV_DONTNEED`).
//! - A class's `open` list holds every chunk of that class that has a
//!   retained, dirty, free or fresh slot, and may hold a chunk whose last
//!   room is a batch of dirty slots being discarded outside the lock
//!   (another thread may take from the class meanwhile): the taker drops
//!   such a chunk from the list when it meets it, and `discarded` lists it
//!   again (`chunk.listed` mirrors membership). Before this rule, a taker
//!   in that window carved a "fresh" slot past the chunk's end: a guard
//!   installed over a neighbouring mapping, or `ENOMEM`.
//! - Every chunk is entered in the overflow handler's chunk table
//!   (`chunk_table.rs`) from before its first slot is handed out until
//!   before it is unmapped (unless that table is full).
//!
//! ## Costs
//!
//! Taking a retained or free slot: the lock, no syscall (and no page fault
//! for a retained one or a prepared one whose page was populated). Taking a
//! fresh slot: the lock and one `mprotect`, or with madvise guards one
//! `process_madvise` for the guards of a batch and one for its top pages
//! (one `madvise` per slot and no populating where the kernel lacks vector
//! advice); plus one `mmap` when a new chunk is needed. 10,000 fibers on
//! two workers took 10,119 `madvise` calls before batches, 230 `madvise`
//! and 688 `process_madvise` with them. Returning a slot:
//! the lock, plus one `munmap` (outside the lock) when it was the chunk's
//! last slot out; past the retained budget, one `madvise(MADV_DONTNEED)` per
//! run of adjacent slots every [`DIRTY_BATCH`] slots of a chunk (about 1 in
//! 64 returns, instead of every one).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::advice;
use super::chunk_table::{self, ChunkTable};
use super::error::{os_failure, Op};
use super::guard::{self, GuardKind};
use super::page_size;

/// The most address space one madvise chunk reserves (unless one slot is
/// bigger). A million 256 KiB stacks then take about 4,000 chunks, far below
/// `vm.max_map_count`; one chunk costs no memory until its pages are touched.
const CHUNK_BYTES: usize = 64 << 20;

/// Slots in a class's first madvise chunk; each next chunk doubles, up to
/// [`CHUNK_BYTES`]. Keeps the reservation of a program with a few fibers small.
const FIRST_SLOTS: usize = 16;

/// The most slot bytes kept *retained* (returned, pages not discarded),
/// over all chunks. Like the pools' budget: memory a program that just
/// finished many fibers may keep, to be reused or unmapped with its chunk.
/// A retained default-size stack usually holds one or two touched pages, so
/// the memory actually kept is far below this.
const RETAINED_BYTES: usize = 64 << 20;

/// Dirty slots of one chunk that make the releaser discard them all.
const DIRTY_BATCH: usize = 64;

/// The most slot bytes kept *dirty* over all chunks (their pages are not
/// discarded yet); past it, the releasing chunk's dirty slots are discarded
/// at once, whatever their number.
const DIRTY_BYTES: usize = 64 << 20;

/// The most fresh slots prepared at once (guards installed and top pages
/// populated by one call each, see [`Allocator::prepare`]).
const PREPARE_MAX: usize = advice::MAX_RANGES;

/// How many homes threads are spread over (round robin, in the order they
/// first take a fresh slot): enough for the workers of a runtime on a
/// machine of that many cores to have chunks of their own, few enough that
/// a program of many short-lived threads does not multiply its classes.
const HOMES: usize = 16;

/// The calling thread's home: given at its first call, round robin.
fn home() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    HOME.try_with(|h| {
        if h.get() == usize::MAX {
            h.set(NEXT.fetch_add(1, Ordering::Relaxed) % HOMES);
        }
        h.get()
    })
    .unwrap_or(0) // a thread's last destructors: any home will do
}

/// A stack slot that is *out*: the descriptor a `Stack` or a pool owns.
///
/// Two words, so that moving one (in and out of a pool, inside an
/// `io::Result`) is two register moves: the address of the usable memory's
/// low end, and the usable size with the guard in its low bits (sizes are
/// page multiples, at least 4 KiB, so bits 0–11 are free): the guard kind
/// in bit 0, the number of guard pages minus one in bits 1–11. The guard is
/// that many pages just below `limit`.
///
/// Not `Clone`: exactly one value describes each out slot, and giving it back
/// to [`release`] ends it.
#[derive(Debug)]
pub(super) struct Slot {
    /// Lowest usable address, just above the guard.
    limit: NonNull<u8>,
    /// Usable bytes, `| 1` for an mprotect guard, `| (pages - 1) << 1` for
    /// the guard's pages.
    size_kind: usize,
}

// SAFETY: a `Slot` describes memory that only its owner uses; the pointer is
// never dereferenced through the descriptor, so moving it to another thread
// moves nothing but the right to use that memory.
unsafe impl Send for Slot {}
// SAFETY: `&Slot` only reads addresses and sizes.
unsafe impl Sync for Slot {}

/// Bit 0 of `Slot::size_kind`: set for an mprotect guard.
pub(super) const MPROTECT_BIT: usize = 1;
/// Bits 1–11 of `Slot::size_kind`: the guard's pages minus one.
const GUARD_BITS: usize = 0xffe;

// The guard's page count fits its bits, below the smallest page size.
const _: () = assert!((super::Stack::MAX_GUARD_PAGES - 1) << 1 <= GUARD_BITS);
const _: () = assert!(GUARD_BITS < 4096 && MPROTECT_BIT < 2);

/// The low bits of a slot's `size_kind` for a guard of `pages` (at least
/// one, at most `MAX_GUARD_PAGES`) made by `kind`.
pub(super) fn shape_bits(pages: usize, kind: GuardKind) -> usize {
    debug_assert!((1..=super::Stack::MAX_GUARD_PAGES).contains(&pages));
    let kind = match kind {
        GuardKind::Madvise => 0,
        GuardKind::Mprotect => MPROTECT_BIT,
    };
    (pages - 1) << 1 | kind
}

impl Slot {
    fn new(limit: NonNull<u8>, size: usize, pages: usize, kind: GuardKind) -> Slot {
        Slot {
            limit,
            size_kind: size | shape_bits(pages, kind),
        }
    }

    /// The guard's pages and kind, as [`shape_bits`] encodes them.
    #[inline]
    pub(super) fn shape(&self) -> usize {
        self.size_kind & (GUARD_BITS | MPROTECT_BIT)
    }

    /// Lowest usable address, just above the guard.
    #[inline]
    pub(super) fn limit(&self) -> *mut u8 {
        self.limit.as_ptr()
    }

    /// Guard bytes below [`limit`](Slot::limit).
    #[inline]
    pub(super) fn guard_len(&self) -> usize {
        (((self.size_kind & GUARD_BITS) >> 1) + 1) * page_size()
    }

    /// Usable bytes.
    #[inline]
    pub(super) fn size(&self) -> usize {
        self.size_kind & !(GUARD_BITS | MPROTECT_BIT)
    }

    /// The guard mechanism.
    #[inline]
    pub(super) fn kind(&self) -> GuardKind {
        if self.size_kind & MPROTECT_BIT == 0 {
            GuardKind::Madvise
        } else {
            GuardKind::Mprotect
        }
    }

    /// Moves the descriptor out of a place that is about to be forgotten
    /// (`Stack::drop`), leaving a stale copy behind that must not be used.
    #[inline]
    pub(super) fn take(&mut self) -> Slot {
        Slot {
            limit: self.limit,
            size_kind: self.size_kind,
        }
    }
}

/// One mapping of `nslots` slots.
struct Chunk {
    /// The mapping; unmapped when the chunk is dropped.
    map: memmap2::MmapMut,
    /// Index of the chunk's class in [`Allocator::classes`].
    class: usize,
    /// Bytes per slot (guard + usable).
    slot_bytes: usize,
    /// Guard bytes at the low end of each slot.
    guard: usize,
    /// Slots in the mapping.
    nslots: usize,
    /// Slots `fresh..nslots` were never handed out.
    fresh: usize,
    /// Indices of free slots (guarded, discarded).
    free: Vec<usize>,
    /// Indices of retained slots (guarded, pages kept).
    retained: Vec<usize>,
    /// Indices of dirty slots (guarded, pages not discarded yet).
    dirty: Vec<usize>,
    /// Slots out or being discarded.
    live: usize,
    /// Whether the chunk is in its class's `open` list.
    listed: bool,
    /// Its entry in the overflow handler's chunk table.
    table_index: chunk_table::Index,
}

impl Chunk {
    fn start(&self) -> usize {
        self.map.as_ptr() as usize
    }

    fn has_room(&self) -> bool {
        !self.retained.is_empty()
            || !self.dirty.is_empty()
            || !self.free.is_empty()
            || self.fresh < self.nslots
    }
}

/// All chunks of one usable size, guard size and guard kind.
struct Class {
    size: usize,
    guard_pages: usize,
    kind: GuardKind,
    /// The group of threads whose fresh slots come from this class.
    home: usize,
    /// Start addresses of this class's chunks with room.
    open: Vec<usize>,
    /// Slots in the next chunk this class maps.
    next_slots: usize,
}

/// The process-wide slot allocator.
struct Allocator {
    /// Classes are never removed, so an index stays valid.
    classes: Vec<Class>,
    /// Every mapped chunk, by start address (to find a slot's chunk).
    chunks: BTreeMap<usize, Chunk>,
    /// Slots ever handed out.
    allocated: u64,
    /// Slots ever given back.
    released: u64,
    /// Sum of the chunks' lengths.
    mapped_bytes: usize,
    /// Sum of the slot sizes of all retained slots.
    retained_bytes: usize,
    /// Sum of the slot sizes of all dirty slots.
    dirty_bytes: usize,
    /// Every chunk in `chunks` is entered there while it is mapped.
    table: ChunkTable,
}

static ALLOCATOR: Mutex<Allocator> = Mutex::new(Allocator {
    classes: Vec::new(),
    chunks: BTreeMap::new(),
    allocated: 0,
    released: 0,
    mapped_bytes: 0,
    retained_bytes: 0,
    dirty_bytes: 0,
    table: ChunkTable::new(),
});

/// Locks the allocator. Nothing panics while holding it, but if something
/// ever did, the state is still consistent between statements, so a poisoned
/// lock is used as is rather than turned into a panic (drops must not panic).
fn lock() -> MutexGuard<'static, Allocator> {
    ALLOCATOR.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the allocator has done so far; see `StackStats`.
pub(super) struct Counters {
    pub(super) allocated: u64,
    pub(super) released: u64,
    pub(super) chunks: usize,
    pub(super) mapped_bytes: usize,
    pub(super) retained_bytes: usize,
    pub(super) dirty_bytes: usize,
}

/// A snapshot of the allocator's counters.
pub(super) fn counters() -> Counters {
    let a = lock();
    Counters {
        allocated: a.allocated,
        released: a.released,
        chunks: a.chunks.len(),
        mapped_bytes: a.mapped_bytes,
        retained_bytes: a.retained_bytes,
        dirty_bytes: a.dirty_bytes,
    }
}

/// Hands out a slot of `size` usable bytes (page-rounded, validated) with a
/// guard of `guard_pages` pages (validated) made by `kind`.
///
/// # Errors
///
/// A [`StackError`](super::StackError) in an `io::Error` of the OS error's
/// kind when `mmap` or the guard installation fails. For `Madvise`, an
/// `EINVAL` also demotes the process to mprotect guards.
pub(super) fn allocate(size: usize, guard_pages: usize, kind: GuardKind) -> io::Result<Slot> {
    let mut locked = lock();
    let (result, after) = locked.allocate(size, guard_pages, kind, home());
    drop(locked);
    after.run();
    result
}

impl Allocator {
    /// [`allocate`]'s work under the lock; a chunk to unmap comes back with
    /// the result, for the caller to drop once the lock is released.
    fn allocate(&mut self, size: usize, guard_pages: usize, kind: GuardKind, home: usize) -> Taken {
        let guard = guard_pages * page_size();
        let slot_bytes = size + guard;
        let class = self.class_index(size, guard_pages, kind, home);
        loop {
            if let Some(taken) = self.take_open(class, slot_bytes, guard) {
                return taken;
            }
            let nslots = self.classes[class].next_slots;
            let chunk = match map_chunk(class, slot_bytes, guard, nslots) {
                Ok(chunk) => chunk,
                // A tight RLIMIT_AS may still leave room for a single slot.
                Err(_) if nslots > 1 => match map_chunk(class, slot_bytes, guard, 1) {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        return (
                            Err(os_failure(Op::Map, size, slot_bytes, e)),
                            After::Nothing,
                        )
                    }
                },
                Err(e) => {
                    let err = os_failure(Op::Map, size, slot_bytes * nslots, e);
                    return (Err(err), After::Nothing);
                }
            };
            let max_slots = (CHUNK_BYTES / slot_bytes).max(1);
            let c = &mut self.classes[class];
            if c.kind == GuardKind::Madvise {
                c.next_slots = (nslots * 2).min(max_slots);
            }
            let mut chunk = chunk;
            let start = chunk.start();
            chunk.table_index = self
                .table
                .insert(start, chunk.map.len(), slot_bytes, chunk.guard);
            self.mapped_bytes += chunk.map.len();
            self.chunks.insert(start, chunk);
            self.classes[class].open.push(start);
        }
    }
}

/// Maps a chunk of `nslots` slots for `class` (no guards yet).
fn map_chunk(class: usize, slot_bytes: usize, guard: usize, nslots: usize) -> io::Result<Chunk> {
    let len = slot_bytes
        .checked_mul(nslots)
        .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let map = memmap2::MmapOptions::new()
        .len(len)
        .stack()
        .no_reserve_swap()
        .map_anon()?;
    Ok(Chunk {
        map,
        class,
        slot_bytes,
        guard,
        nslots,
        fresh: 0,
        free: Vec::new(),
        retained: Vec::new(),
        dirty: Vec::new(),
        live: 0,
        listed: true,
        table_index: chunk_table::NONE,
    })
}

/// The outcome of taking from an open chunk, and what to do once the lock
/// is released.
type Taken = (io::Result<Slot>, After);

/// Work for the taker once the allocator's lock is released.
enum After {
    Nothing,
    /// A chunk whose last slot went away: unmap it (by dropping it).
    Unmap(Chunk),
    /// Fresh slots just prepared: populate their top pages.
    Populate(Prepared),
}

impl After {
    /// Does it (with the allocator's lock released).
    fn run(self) {
        match self {
            After::Nothing => {}
            After::Unmap(chunk) => drop(chunk),
            After::Populate(batch) => batch.populate(),
        }
    }
}

/// Fresh slots of one chunk whose guards were just installed together: the
/// first was handed out, the others made free. Their top pages are
/// populated (faulted in, writable) outside the lock, with one call.
///
/// The handed-out slot keeps the chunk mapped meanwhile (it is out, and
/// the taker has not returned it yet). The others may be taken by another
/// thread before they are populated, and even used and discarded: that is
/// harmless, since populating changes no byte (`advice.rs`), and a free
/// slot still reads as zero.
struct Prepared {
    chunk: usize,
    slot_bytes: usize,
    first: usize,
    count: usize,
}

impl Prepared {
    /// Populates the top page of each slot. A fiber's first frames and its
    /// bookkeeping go there, so each of these pages would be faulted in at
    /// the slot's first use anyway, one fault each.
    fn populate(&self) {
        let page = page_size();
        let mut ranges = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; PREPARE_MAX];
        for (i, r) in ranges.iter_mut().take(self.count).enumerate() {
            let top = self.chunk + (self.first + i + 1) * self.slot_bytes - page;
            *r = libc::iovec {
                iov_base: top as *mut libc::c_void,
                iov_len: page,
            };
        }
        // SAFETY: each range is the top page of a slot of a chunk that stays
        // mapped (see above): page-aligned, inside our private anonymous
        // mapping, never a guard.
        unsafe { advice::populate(&ranges[..self.count]) };
    }
}

impl Allocator {
    /// The index of the class (size, guard pages, kind), created if new.
    fn class_index(
        &mut self,
        size: usize,
        guard_pages: usize,
        kind: GuardKind,
        home: usize,
    ) -> usize {
        if let Some(i) = self.classes.iter().position(|c| {
            c.size == size && c.guard_pages == guard_pages && c.kind == kind && c.home == home
        }) {
            return i;
        }
        let slot_bytes = size + guard_pages * page_size();
        let next_slots = match kind {
            GuardKind::Madvise => FIRST_SLOTS.min((CHUNK_BYTES / slot_bytes).max(1)),
            GuardKind::Mprotect => 1,
        };
        self.classes.push(Class {
            size,
            guard_pages,
            kind,
            home,
            open: Vec::new(),
            next_slots,
        });
        self.classes.len() - 1
    }

    /// Takes a slot from the class's open chunks, or `None` if it has none.
    fn take_open(&mut self, class: usize, slot_bytes: usize, guard: usize) -> Option<Taken> {
        let c = &self.classes[class];
        let (size, guard_pages, kind) = (c.size, c.guard_pages, c.kind);
        let mut after = After::Nothing;
        let (start, chunk) = loop {
            let start = *self.classes[class].open.last()?;
            let Some(chunk) = self.chunks.get_mut(&start) else {
                // Cannot happen (open lists only mapped chunks): drop the
                // stale entry and report it rather than hide it.
                self.classes[class].open.pop();
                let err = io::Error::other("stack allocator lost a chunk");
                return Some((Err(err), After::Nothing));
            };
            if chunk.has_room() {
                break (start, chunk);
            }
            // Its last room is a batch being discarded outside the lock
            // (`give_back` leaves the chunk listed): `discarded` lists it
            // again. Taking from it would carve a slot past its end.
            chunk.listed = false;
            self.classes[class].open.pop();
        };
        let index = if let Some(index) = chunk.retained.pop() {
            self.retained_bytes -= slot_bytes;
            index
        } else if let Some(index) = chunk.dirty.pop() {
            // Pages still there, like a retained slot's.
            self.dirty_bytes -= slot_bytes;
            index
        } else if let Some(index) = chunk.free.pop() {
            index
        } else {
            let index = chunk.fresh;
            match prepare(chunk, kind) {
                Ok(count) => {
                    if count > 1 {
                        after = After::Populate(Prepared {
                            chunk: start,
                            slot_bytes,
                            first: index,
                            count,
                        });
                    }
                }
                Err(e) => {
                    if kind == GuardKind::Madvise && e.raw_os_error() == Some(libc::EINVAL) {
                        guard::demote_madvise();
                    }
                    let err = os_failure(Op::Guard, size, guard, e);
                    let after = match (chunk.live == 0).then(|| self.remove(start)).flatten() {
                        Some(chunk) => After::Unmap(chunk),
                        None => After::Nothing,
                    };
                    return Some((Err(err), after));
                }
            }
            index
        };
        chunk.live += 1;
        let low = chunk.start() + index * slot_bytes;
        if !chunk.has_room() {
            chunk.listed = false;
            self.classes[class].open.pop();
        }
        self.allocated += 1;
        // SAFETY: `low + guard` lies inside a live mapping, so it is not null.
        let limit = unsafe { NonNull::new_unchecked((low + guard) as *mut u8) };
        let slot = Slot::new(limit, size, guard_pages, kind);
        Some((Ok(slot), after))
    }

    /// Unlinks the chunk at `start` from the allocator; the caller drops
    /// (unmaps) it after releasing the lock.
    fn remove(&mut self, start: usize) -> Option<Chunk> {
        let chunk = self.chunks.remove(&start)?;
        self.table.remove(chunk.table_index);
        if chunk.listed {
            let open = &mut self.classes[chunk.class].open;
            if let Some(i) = open.iter().rposition(|&s| s == start) {
                open.swap_remove(i);
            }
        }
        self.mapped_bytes -= chunk.map.len();
        self.retained_bytes -= chunk.retained.len() * chunk.slot_bytes;
        self.dirty_bytes -= chunk.dirty.len() * chunk.slot_bytes;
        Some(chunk)
    }
}

/// Installs the guards of the chunk's next fresh slots, up to a batch (see
/// [`prepare_len`]), with one call where the kernel can (`advice.rs`).
/// The first becomes the taker's; the others, guarded and untouched
/// (reading as zero), become free slots, taken before any fresh one.
/// Returns how many slots were prepared (at least one), or the error of
/// the first slot's guard, leaving the chunk as it was.
fn prepare(chunk: &mut Chunk, kind: GuardKind) -> io::Result<usize> {
    let first = chunk.fresh;
    let low = |i: usize| chunk.start() + i * chunk.slot_bytes;
    let want = prepare_len(chunk, kind);
    let done = if want == 1 {
        // SAFETY: `low(first)` is the start of a fresh slot of this chunk:
        // page-aligned (chunk and slot sizes are page multiples), inside our
        // mapping, and never handed out, so no one uses it.
        unsafe { guard::install(kind, low(first) as *mut u8, chunk.guard) }?;
        1
    } else {
        let mut ranges = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; PREPARE_MAX];
        for (i, r) in ranges.iter_mut().take(want).enumerate() {
            *r = libc::iovec {
                iov_base: low(first + i) as *mut libc::c_void,
                iov_len: chunk.guard,
            };
        }
        // SAFETY: each range is the guard of a fresh slot of this chunk
        // (page-aligned, inside our mapping, never handed out), and guard
        // markers are what a fresh slot's guard gets (`guard::install`).
        match unsafe { advice::advise(&ranges[..want], guard::MADV_GUARD_INSTALL) } {
            (0, Some(e)) => return Err(e),
            (0, None) => return Err(io::Error::other("no guard installed")),
            // The slots past the first failure stay fresh: a later taker
            // tries them again and gets the error if it persists.
            (done, _) => done,
        }
    };
    chunk.fresh += done;
    // Taken lowest first: the free list is popped from its end.
    chunk.free.extend((first + 1..first + done).rev());
    Ok(done)
}

/// How many fresh slots to prepare at once: one for mprotect guards (their
/// chunks hold one slot), else as many as the chunk has handed out so far
/// (so the slots prepared and never used stay fewer than those used:
/// 1, 1, 2, 4... per chunk), at most [`PREPARE_MAX`] and the fresh slots
/// left.
fn prepare_len(chunk: &Chunk, kind: GuardKind) -> usize {
    match kind {
        GuardKind::Mprotect => 1,
        GuardKind::Madvise => chunk
            .fresh
            .clamp(1, PREPARE_MAX)
            .min(chunk.nslots - chunk.fresh),
    }
}

/// Gives an out slot back: its chunk is unmapped if no other slot of it is
/// out; otherwise the slot is retained (pages kept) while the budget allows,
/// or becomes dirty, and a full batch of dirty slots is discarded. Never
/// panics.
pub(super) fn release(slot: Slot) {
    let low = slot.limit() as usize - slot.guard_len();
    let mut locked = lock();
    locked.released += 1;
    match locked.give_back(low) {
        GiveBack::Done(unmap) => {
            drop(locked);
            drop(unmap);
        }
        GiveBack::Discard(batch) => {
            drop(locked);
            batch.discard();
            let unmap = lock().discarded(&batch);
            drop(unmap);
        }
    }
}

/// What [`Allocator::give_back`] did with a slot.
enum GiveBack {
    /// The slot is back, or its chunk is to be unmapped.
    Done(Option<Chunk>),
    /// The slot is back, and these dirty slots of its chunk are the
    /// caller's to discard (they count as *discarding* until
    /// [`Allocator::discarded`]).
    Discard(Batch),
}

/// Dirty slots of one chunk taken for discarding.
struct Batch {
    chunk: usize,
    slot_bytes: usize,
    guard: usize,
    /// Slot indices, sorted.
    indices: Vec<usize>,
}

impl Batch {
    /// Discards the usable pages of every slot in the batch: one `madvise`
    /// per run of adjacent slots (the guard pages between them included:
    /// their markers survive). Runs outside the lock; the slots are ours
    /// until `discarded` (they count in the chunk's `live`, so it stays
    /// mapped). Cannot fail on a range of our own mapping, and nothing
    /// useful could be done if it did.
    fn discard(&self) {
        let mut i = 0;
        while i < self.indices.len() {
            let mut j = i + 1;
            while j < self.indices.len() && self.indices[j] == self.indices[j - 1] + 1 {
                j += 1;
            }
            let first = self.chunk + self.indices[i] * self.slot_bytes + self.guard;
            let end = self.chunk + (self.indices[j - 1] + 1) * self.slot_bytes;
            // SAFETY: the range lies inside the chunk's mapping, which stays
            // mapped (these slots count as live), and covers only slots of
            // this batch (the usable memory of the first, then whole slots),
            // which nothing uses any more.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED);
            }
            i = j;
        }
    }
}

impl Allocator {
    /// Marks the out slot whose guard starts at `low` as given back.
    fn give_back(&mut self, low: usize) -> GiveBack {
        let Some((&start, chunk)) = self.chunks.range_mut(..=low).next_back() else {
            return GiveBack::Done(None);
        };
        if low >= start + chunk.map.len() {
            return GiveBack::Done(None); // Not ours (cannot happen); leave it alone.
        }
        if chunk.live == 1 {
            // The last slot out: unmap the chunk, pages and all.
            chunk.live = 0;
            return GiveBack::Done(self.remove(start));
        }
        let index = (low - start) / chunk.slot_bytes;
        chunk.live -= 1;
        if !chunk.listed {
            chunk.listed = true;
            let class = chunk.class;
            self.classes[class].open.push(start);
        }
        if self.retained_bytes + chunk.slot_bytes <= RETAINED_BYTES {
            self.retained_bytes += chunk.slot_bytes;
            chunk.retained.push(index);
            return GiveBack::Done(None);
        }
        chunk.dirty.push(index);
        self.dirty_bytes += chunk.slot_bytes;
        if chunk.dirty.len() < DIRTY_BATCH && self.dirty_bytes <= DIRTY_BYTES {
            return GiveBack::Done(None);
        }
        let mut indices = std::mem::take(&mut chunk.dirty);
        indices.sort_unstable();
        chunk.live += indices.len();
        self.dirty_bytes -= indices.len() * chunk.slot_bytes;
        GiveBack::Discard(Batch {
            chunk: start,
            slot_bytes: chunk.slot_bytes,
            guard: chunk.guard,
            indices,
        })
    }

    /// Makes the slots of a discarded batch free. Returns the chunk if none
    /// of its slots is out any more, for the caller to unmap.
    fn discarded(&mut self, batch: &Batch) -> Option<Chunk> {
        let chunk = self.chunks.get_mut(&batch.chunk)?;
        chunk.live -= batch.indices.len();
        if chunk.live == 0 {
            return self.remove(batch.chunk);
        }
        chunk.free.extend_from_slice(&batch.indices);
        if !chunk.listed {
            chunk.listed = true;
            let class = chunk.class;
            self.classes[class].open.push(batch.chunk);
        }
        None
    }
}

#[cfg(test)]
#[path = "chunk_tests.rs"]
mod tests;
