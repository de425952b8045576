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
        let (slot, after) = a.allocate(size, pages, kind, 0);
        assert!(!matches!(after, After::Unmap(_)));
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
    let (slot, after) = a.allocate(size, pages, kind, 0);
    assert!(!matches!(after, After::Unmap(_)));
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

/// Whether reading the byte at `addr` faults (a guard).
fn refuses_access(addr: usize) -> bool {
    guard::kernel_refuses(addr).expect("a pipe")
}

/// Whether the page at `addr` (page-aligned) is resident.
fn resident(addr: usize) -> bool {
    let mut v = 0u8;
    // SAFETY: one page of our own mapping, one byte of output.
    let r = unsafe { libc::mincore(addr as *mut libc::c_void, page_size(), &mut v) };
    assert_eq!(r, 0, "mincore: {}", io::Error::last_os_error());
    v & 1 == 1
}

/// Takes five fresh slots of the preferred guard kind from a new allocator
/// and checks the batches: every slot prepared (handed out or free) has
/// its guard, none of their usable pages was written, and the top pages
/// were populated exactly when `populated` says. Returns the allocator's
/// first chunk's fresh count and free slots.
fn check_prepared_batches(populated: bool) -> (usize, usize) {
    let mut a = allocator();
    let (size, pages) = (4 * page_size(), 1);
    let kind = GuardKind::preferred();
    let out: Vec<Slot> = (0..5)
        .map(|_| {
            let (slot, after) = a.allocate(size, pages, kind, 0);
            after.run();
            slot.expect("a slot")
        })
        .collect();
    let (&start, chunk) = a.chunks.iter().next().expect("a chunk");
    let slot_bytes = size + pages * page_size();
    let (fresh, free) = (chunk.fresh, chunk.free.len());
    // The last batch (slots 4..8) was populated or not as a whole; the
    // slot still free at its end was never touched by anyone.
    let last_free = start + (fresh - 1) * slot_bytes;
    if kind == GuardKind::Madvise {
        assert_eq!(
            resident(last_free + slot_bytes - page_size()),
            populated,
            "a prepared slot's top page is populated iff vector advice works"
        );
    }
    // (After the residency check: reading a usable byte faults a page in.)
    for i in 0..fresh {
        let low = start + i * slot_bytes;
        assert!(refuses_access(low), "slot {i}: its guard is installed");
        assert!(!refuses_access(low + slot_bytes - 1), "slot {i}: usable");
    }
    drop(out); // descriptors only: the slots stay out until unmapped
    unmap_all(a);
    (fresh, free)
}

/// Fresh madvise slots are prepared in batches that grow with the chunk's
/// use (1, 1, 2, 4...): five takes leave eight slots guarded, three of
/// them free, and where the kernel takes vector advice their top pages are
/// populated ahead of the fault.
#[test]
fn fresh_slots_are_prepared_in_growing_batches_each_guarded() {
    let (fresh, free) = check_prepared_batches(advice::is_vectored_after_try());
    match GuardKind::preferred() {
        GuardKind::Madvise => assert_eq!((fresh, free), (8, 3)),
        GuardKind::Mprotect => assert_eq!((fresh, free), (1, 0), "one slot per chunk"),
    }
}

const FALLBACK_CASE: &str = "SPINDLE_CHUNK_FALLBACK_CASE";

/// Where `process_madvise` cannot be used (before Linux 6.13, under
/// qemu-user or a seccomp filter) batches still install every guard, one
/// `madvise` per slot, and populate nothing. Run in a child process, so
/// that forcing the fallback does not change the other tests' process.
#[test]
fn without_vector_advice_batches_guard_every_slot_one_by_one() {
    if std::env::var_os(FALLBACK_CASE).is_some() {
        advice::force_fallback();
        let (fresh, free) = check_prepared_batches(false);
        if GuardKind::preferred() == GuardKind::Madvise {
            assert_eq!((fresh, free), (8, 3));
        }
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "stack::chunk::tests::without_vector_advice_batches_guard_every_slot_one_by_one",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FALLBACK_CASE, "1")
        .output()
        .expect("spawn the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
