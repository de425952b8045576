//! The table of mapped chunks that the overflow handler reads: given a fault
//! address, which slot is it in?
//!
//! The overflow handler finds the fiber that overflowed from the fault
//! address alone (see `overflow.rs`), so a switch does no bookkeeping for
//! it. For that it must map an address to its slot from inside a signal
//! handler, where the allocator's mutex and its `BTreeMap` are off limits
//! (the faulting thread may hold the lock). This table mirrors the
//! allocator's chunks in a fixed array of atomics that a handler can read.
//!
//! ## Invariants
//!
//! - Entries are written only under the allocator's mutex (the `&mut
//!   ChunkTable` that [`insert`](ChunkTable::insert) and
//!   [`remove`](ChunkTable::remove) take lives inside the allocator), so
//!   there is one writer at a time.
//! - Each entry is a seqlock: its `seq` is odd while it is being written.
//!   A reader ([`find`]) takes an entry only if `seq` was even and unchanged
//!   across its reads, so it never uses a torn (start, len, slot, guard)
//!   entry.
//!   An entry being rewritten cannot describe the chunk of a fault that
//!   matters: a chunk is in the table for as long as it is mapped, and the
//!   chunk of a running fiber's stack is mapped.
//! - An empty entry has `len == 0` and matches no address.
//! - [`find`] allocates nothing, takes no lock and makes no system call.
//!
//! ## Capacity
//!
//! [`CAPACITY`] entries (24 bytes of `.bss` each plus the sequence word;
//! only the pages touched cost memory). A madvise chunk holds up to 64 MiB
//! of slots, so the table covers terabytes of stacks; an mprotect chunk
//! holds one slot, and the kernel's default `vm.max_map_count` (65,530)
//! allows about 32,000 of those. A chunk mapped while the table is full is
//! not entered: its fibers' overflows are then passed on as a plain
//! `SIGSEGV`, as for memory that is not a fiber stack.

use std::sync::atomic::{fence, AtomicUsize, Ordering};

/// Entries in the table.
pub(super) const CAPACITY: usize = 1 << 16;

/// One chunk: the address range of its mapping, its slot size, and the
/// size of the guard at the low end of each slot (all slots of a chunk have
/// the same guard: the allocator's classes key on it).
struct Entry {
    /// Even when the entry is stable, odd while it is being written.
    seq: AtomicUsize,
    /// Lowest address of the mapping.
    start: AtomicUsize,
    /// Length of the mapping; 0 for an empty entry.
    len: AtomicUsize,
    /// Bytes per slot (guard + usable).
    slot_bytes: AtomicUsize,
    /// Guard bytes at the low end of each slot.
    guard: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // Only to build the array.
const EMPTY: Entry = Entry {
    seq: AtomicUsize::new(0),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    slot_bytes: AtomicUsize::new(0),
    guard: AtomicUsize::new(0),
};

static ENTRIES: [Entry; CAPACITY] = [EMPTY; CAPACITY];

/// Entries `0..HIGH` may be in use: [`find`] scans no further.
static HIGH: AtomicUsize = AtomicUsize::new(0);

/// The writer's side, kept inside the allocator (under its mutex).
#[derive(Debug, Default)]
pub(super) struct ChunkTable {
    /// Indices below `HIGH` of empty entries.
    free: Vec<usize>,
}

/// Where a chunk sits in the table (to remove it), or `NONE`.
pub(super) type Index = usize;

/// The index of a chunk that could not be entered (the table was full).
pub(super) const NONE: Index = usize::MAX;

impl ChunkTable {
    /// An empty table (the allocator's initial state).
    pub(super) const fn new() -> ChunkTable {
        ChunkTable { free: Vec::new() }
    }

    /// Enters the chunk mapped at `start..start + len`, cut into slots of
    /// `slot_bytes` whose lowest `guard` bytes are their guard. Returns its
    /// index, or [`NONE`] if the table is full.
    pub(super) fn insert(
        &mut self,
        start: usize,
        len: usize,
        slot_bytes: usize,
        guard: usize,
    ) -> Index {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let high = HIGH.load(Ordering::Relaxed);
                if high == CAPACITY {
                    return NONE;
                }
                high
            }
        };
        write(&ENTRIES[index], start, len, slot_bytes, guard);
        if index == HIGH.load(Ordering::Relaxed) {
            // Published after the entry itself, so a reader that sees the
            // new HIGH sees a complete entry.
            HIGH.store(index + 1, Ordering::Release);
        }
        index
    }

    /// Removes the entry `index` returned by [`insert`](ChunkTable::insert)
    /// (nothing for [`NONE`]), before its chunk is unmapped.
    pub(super) fn remove(&mut self, index: Index) {
        if index != NONE {
            write(&ENTRIES[index], 0, 0, 0, 0);
            self.free.push(index);
        }
    }
}

/// Rewrites `entry` under its seqlock. Only under the allocator's mutex.
fn write(entry: &Entry, start: usize, len: usize, slot_bytes: usize, guard: usize) {
    let seq = entry.seq.load(Ordering::Relaxed);
    entry.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    entry.start.store(start, Ordering::Relaxed);
    entry.len.store(len, Ordering::Relaxed);
    entry.slot_bytes.store(slot_bytes, Ordering::Relaxed);
    entry.guard.store(guard, Ordering::Relaxed);
    entry.seq.store(seq.wrapping_add(2), Ordering::Release);
}

/// A stack slot as the table knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotRange {
    /// Its lowest address, where its guard starts.
    pub(crate) low: usize,
    /// Its size in bytes (guard + usable).
    pub(crate) bytes: usize,
    /// Its guard's size in bytes.
    pub(crate) guard: usize,
}

/// The slot that contains `addr`; `None` if `addr` is in no mapped chunk.
///
/// Async-signal-safe: loads from a static array only.
pub(crate) fn find(addr: usize) -> Option<SlotRange> {
    let high = HIGH.load(Ordering::Acquire);
    for entry in &ENTRIES[..high] {
        let seq = entry.seq.load(Ordering::Acquire);
        let start = entry.start.load(Ordering::Relaxed);
        let len = entry.len.load(Ordering::Relaxed);
        let slot_bytes = entry.slot_bytes.load(Ordering::Relaxed);
        let guard = entry.guard.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if seq % 2 == 1 || entry.seq.load(Ordering::Relaxed) != seq {
            continue;
        }
        if len != 0 && slot_bytes != 0 && addr >= start && addr - start < len {
            let low = start + (addr - start) / slot_bytes * slot_bytes;
            return Some(SlotRange {
                low,
                bytes: slot_bytes,
                guard,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Stack;

    #[test]
    fn a_stack_is_found_from_any_of_its_addresses() {
        let stack = Stack::new(64 * 1024).unwrap();
        let guard = stack.guard();
        let slot = SlotRange {
            low: guard.start,
            bytes: stack.base() as usize - guard.start,
            guard: guard.len(),
        };
        for addr in [
            guard.start,
            guard.end - 1,
            stack.limit() as usize,
            stack.base() as usize - 1,
        ] {
            assert_eq!(find(addr), Some(slot), "{addr:#x}");
        }
    }

    #[test]
    fn a_large_guard_is_known_by_its_size() {
        let stack = Stack::with_guard_pages(64 * 1024, 16).unwrap();
        let guard = stack.guard();
        assert_eq!(guard.len(), 16 * crate::stack::page_size());
        let found = find(guard.start).expect("a mapped stack");
        assert_eq!((found.low, found.guard), (guard.start, guard.len()));
        assert_eq!(find(stack.limit() as usize), Some(found));
    }

    #[test]
    fn an_address_outside_every_chunk_is_not_found() {
        let local = 0u8;
        assert_eq!(find(&local as *const u8 as usize), None);
        assert_eq!(find(16), None);
    }

    #[test]
    fn a_chunk_leaves_the_table_when_it_is_unmapped() {
        // A size no other test uses: its chunk holds only this stack, and
        // is unmapped when the stack goes back to the allocator.
        let stack = Stack::new(1234 * 1024).unwrap();
        let addr = stack.limit() as usize;
        assert!(find(addr).is_some());
        drop(stack);
        crate::stack::StackPool::clear();
        assert_eq!(find(addr), None);
    }
}
