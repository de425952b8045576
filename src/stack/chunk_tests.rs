//! Unit tests of the slot allocator's bookkeeping, on an allocator of
//! their own (not the process's), so they can reach the states that only a
//! race between threads shows otherwise.

use super::*;

/// An empty allocator, like the process's at start.
fn allocator() -> Allocator {
    Allocator {
        classes: Vec::new(),
        chunks: BTreeMap::new(),
        allocated: 0,
        released: 0,
        mapped_bytes: 0,
        retained_bytes: 0,
        dirty_bytes: 0,
        table: ChunkTable::new(),
    }
}

/// The start of the chunk of `a` that holds `addr`, if any.
fn chunk_of(a: &Allocator, addr: usize) -> Option<usize> {
    let (&start, chunk) = a.chunks.range(..=addr).next_back()?;
    (addr < start + chunk.map.len()).then_some(start)
}

/// Unmaps every chunk of `a` and takes them out of the overflow table.
fn unmap_all(mut a: Allocator) {
    let starts: Vec<usize> = a.chunks.keys().copied().collect();
    for start in starts {
        drop(a.remove(start));
    }
}

/// The window between `give_back` taking a chunk's dirty slots for
/// discarding and `discarded` (outside the lock, so another worker thread
/// may take a stack meanwhile): the chunk is still listed, but has no room.
/// A taker used to carve slot `nslots`, past the chunk's end (skynet on two
/// workers: `ENOMEM` from the guard's `madvise`, or a guard over the next
/// mapping and a SIGSEGV).
#[test]
fn a_chunk_whose_last_room_is_being_discarded_is_passed_over() {
    let mut a = allocator();
    let (size, pages) = (4 * page_size(), 1);
    let kind = GuardKind::Madvise;
    let mut out = Vec::new();
    for _ in 0..FIRST_SLOTS {
        let (slot, unmap) = a.allocate(size, pages, kind, 0);
        assert!(unmap.is_none());
        out.push(slot.expect("a slot"));
    }
    assert_eq!(
        a.chunks.len(),
        1,
        "the first chunk holds {FIRST_SLOTS} slots"
    );
    let (&first, chunk) = a.chunks.iter().next().unwrap();
    assert!(!chunk.has_room());

    // Budgets used up: a slot given back is dirty, and its batch is
    // taken for discarding at once.
    a.retained_bytes = RETAINED_BYTES;
    a.dirty_bytes = DIRTY_BYTES;
    let back = out.remove(0);
    let low = back.limit() as usize - back.guard_len();
    let GiveBack::Discard(batch) = a.give_back(low) else {
        panic!("expected a batch to discard");
    };

    // Another taker, while the batch is being discarded.
    let (slot, unmap) = a.allocate(size, pages, kind, 0);
    assert!(unmap.is_none());
    let slot = slot.expect("a slot of a new chunk");
    let at = slot.limit() as usize;
    let home = chunk_of(&a, at).expect("the slot lies inside a chunk");
    assert_ne!(home, first, "the full chunk has no slot to give");
    assert_eq!(a.chunks.len(), 2);

    // Discarded: the slot is free again and taken next.
    assert!(a.discarded(&batch).is_none());
    let (again, _) = a.allocate(size, pages, kind, 0);
    assert_eq!(again.expect("the discarded slot").limit(), back.limit());
    unmap_all(a);
}

/// Two threads taking fresh slots in turn (two workers spawning) get them
/// from chunks of their own homes, each thread's side by side, so a burst
/// of them ending together is discarded in long runs, not slot by slot.
#[test]
fn each_home_takes_fresh_slots_from_chunks_of_its_own() {
    let mut a = allocator();
    let (size, pages) = (4 * page_size(), 1);
    let slot_bytes = size + pages * page_size();
    let mut taken: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..FIRST_SLOTS {
        for (home, list) in taken.iter_mut().enumerate() {
            let (slot, _) = a.allocate(size, pages, GuardKind::Madvise, home);
            list.push(slot.expect("a slot").limit() as usize);
        }
    }
    let chunks: Vec<usize> = taken
        .iter()
        .map(|list| chunk_of(&a, list[0]).expect("inside a chunk"))
        .collect();
    assert_ne!(chunks[0], chunks[1], "each home has a chunk of its own");
    for (home, list) in taken.iter().enumerate() {
        for pair in list.windows(2) {
            assert_eq!(
                pair[1] - pair[0],
                slot_bytes,
                "home {home}: slots side by side"
            );
        }
        assert!(list
            .iter()
            .all(|&at| chunk_of(&a, at) == Some(chunks[home])));
    }
    unmap_all(a);
}
