//! How deep a stack has ever been used: its high-water mark, for the fiber
//! dump and for choosing stack sizes.
//!
//! ## The method
//!
//! A stack grows down from its base, and a page of it becomes resident the
//! first time it is touched. [`Stack::high_water`] asks `mincore(2)` which
//! pages of the stack are resident, takes the lowest one, and scans it
//! from its low end for the first word that is neither zero nor the paint
//! below: the deepest word written. The mark is `base - that address`.
//!
//! Pooled stacks are reused as they were left (no `madvise` on the way in
//! or out, see the pool's docs), so their pages stay resident with the
//! previous fiber's frames in them, and the scan would see those. To make
//! the measure true for a reused stack, **tracking** paints it when it is
//! handed out: `mincore` says which pages are resident, and those are
//! filled with a 64-bit pattern (`PAINT`); pages that are not resident read
//! as zeros when first touched, and need nothing. The scan then skips
//! paint as it skips zeros.
//!
//! | | cost | precision |
//! |---|---|---|
//! | [`Stack::high_water`] (a dump asks it of every fiber) | one `mincore` over the stack, and a scan of the lowest resident page (about 1 µs for 256 KiB) | the deepest word written, exactly, unless that word was written as zero or as the paint (then the next one up: a few bytes off) |
//! | tracking on, per stack handed out | one `mincore`, and a fill of the pages already resident (what the last user touched) | — |
//! | tracking off | nothing | a stack reused from a pool reports the deepest use of *any* fiber that had it since it was painted or fresh: an upper bound ([`HighWater::is_exact`] is false) |
//!
//! Tracking is off by default: turn it on with [`set_high_water_tracking`]
//! before the fibers to measure are spawned (it is process-wide). Pages
//! the kernel swapped out since they were touched count as untouched.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{page_size, Stack};

/// The paint of a tracked stack's resident pages. Not zero, and not a
/// plausible address or small integer.
const PAINT: u64 = 0x5350_494e_444c_4521; // "SPINDLE!"

static TRACKING: AtomicBool = AtomicBool::new(false);

/// Turns high-water tracking on or off for the stacks handed out from now
/// on, in every thread: a tracked stack is painted where it is already
/// resident, so that [`Stack::high_water`] is exact for it (see the
/// [module docs](self) for the cost).
///
/// # Examples
///
/// ```
/// use spindle::stack::{set_high_water_tracking, Stack};
///
/// set_high_water_tracking(true);
/// let stack = Stack::new(64 * 1024)?;
/// assert!(stack.high_water().is_exact());
/// assert_eq!(stack.high_water().bytes(), 0); // nothing ran on it yet
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_high_water_tracking(on: bool) {
    TRACKING.store(on, Ordering::Relaxed);
}

/// Whether stacks handed out now are tracked.
#[inline(always)]
pub(super) fn tracking() -> bool {
    TRACKING.load(Ordering::Relaxed)
}

/// How deep a stack has been used; see [`Stack::high_water`].
///
/// # Examples
///
/// ```
/// let stack = spindle::stack::Stack::new(64 * 1024)?;
/// let hw = stack.high_water();
/// println!("{} bytes, exact: {}", hw.bytes(), hw.is_exact());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HighWater {
    bytes: usize,
    exact: bool,
}

impl HighWater {
    /// Bytes from the stack's base down to the deepest word written.
    ///
    /// ```
    /// let stack = spindle::stack::Stack::new(64 * 1024)?;
    /// assert!(stack.high_water().bytes() <= stack.size());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bytes(self) -> usize {
        self.bytes
    }

    /// Whether the stack was fresh or painted when handed out, so that
    /// only its present owner's writes count; otherwise the mark is an
    /// upper bound (see the [module docs](self)).
    ///
    /// ```
    /// spindle::stack::set_high_water_tracking(true);
    /// assert!(spindle::stack::Stack::new(64 * 1024)?.high_water().is_exact());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_exact(self) -> bool {
        self.exact
    }
}

impl HighWater {
    /// The mark, raised to `bytes` if that is deeper: a suspended fiber
    /// has certainly used its stack down to its stack pointer, even where
    /// the deepest words it wrote there are zeros.
    pub(crate) fn at_least(self, bytes: usize) -> HighWater {
        HighWater {
            bytes: self.bytes.max(bytes),
            exact: self.exact,
        }
    }
}

/// Which pages of `[start, start + len)` are resident (one byte per page,
/// bit 0 set if resident); `None` if the kernel refuses.
fn resident(start: *const u8, len: usize) -> Option<Vec<u8>> {
    let pages = len / page_size();
    let mut vec = vec![0u8; pages];
    // SAFETY: `start` is page-aligned, the range is mapped (a stack's
    // usable pages), and `vec` has one byte per page of it.
    let r = unsafe { libc::mincore(start as *mut libc::c_void, len, vec.as_mut_ptr()) };
    (r == 0).then_some(vec)
}

/// Paints the resident pages of a stack just handed out, and returns
/// whether it did (tracking was on and the kernel answered).
///
/// # Safety
///
/// `[limit, limit + size)` is the usable range of a stack that nothing
/// uses yet (no fiber runs on it, nothing else reads it).
pub(super) unsafe fn paint(limit: *mut u8, size: usize) -> bool {
    #[cfg(feature = "valgrind")]
    let _quiet = super::valgrind::QuietErrors::new();
    let Some(pages) = resident(limit, size) else {
        return false;
    };
    let page = page_size();
    for (i, _) in pages.iter().enumerate().filter(|(_, &p)| p & 1 != 0) {
        let words = limit.wrapping_add(i * page).cast::<u64>();
        for w in 0..page / 8 {
            // SAFETY: inside the usable range, which nothing else uses
            // (the caller's contract); page-aligned, so 8-aligned.
            unsafe { words.add(w).write_volatile(PAINT) };
        }
    }
    true
}

impl Stack {
    /// How deep this stack has been used: bytes from its base down to the
    /// deepest word written, by resident pages (`mincore`) and a scan of
    /// the lowest one; exact if the stack was fresh or painted when handed
    /// out ([`set_high_water_tracking`]). See the [module docs](self) for
    /// the method, its cost and its precision.
    ///
    /// Call it while no fiber runs on the stack (a suspended fiber's, or
    /// one that has finished): a running fiber's own writes race with the
    /// scan.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::stack::{set_high_water_tracking, Stack};
    ///
    /// set_high_water_tracking(true);
    /// let stack = Stack::new(64 * 1024)?;
    /// // Painted (or fresh), and nothing has run on it.
    /// assert!(stack.high_water().is_exact());
    /// assert_eq!(stack.high_water().bytes(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn high_water(&self) -> HighWater {
        self.measure()
    }

    /// Erases the writes made below the mark `before` since it was taken
    /// (with paint, or zeros on an untracked stack), so that they do not
    /// count: the dump's backtrace capture runs on the traced fiber's stack,
    /// below its stack pointer, and must not raise its mark. Only words more
    /// than `in_use` bytes below the base are touched (the mark may lie
    /// above the stack pointer, when the deepest live words are zeros).
    ///
    /// # Safety
    ///
    /// No fiber runs on the stack, and everything more than `in_use` bytes
    /// below its base is dead (a suspended fiber's stack pointer is there).
    pub(crate) unsafe fn forget_writes_below(&self, before: HighWater, in_use: usize) {
        #[cfg(feature = "valgrind")]
        let _quiet = super::valgrind::QuietErrors::new();
        let after = self.measure();
        let keep = before.bytes.max(in_use);
        if keep == 0 || after.bytes <= keep {
            return;
        }
        let fill = if self.painted { PAINT } else { 0 };
        let base = self.base() as usize;
        let (from, to) = (base - after.bytes, (base - keep) & !7);
        let words = from as *mut u64;
        for w in 0..to.saturating_sub(from) / 8 {
            // SAFETY: inside the usable range, 8-aligned (`after` is a word
            // address), below the stack pointer of a fiber that does not
            // run: dead memory (the caller's contract).
            unsafe { words.add(w).write_volatile(fill) };
        }
    }

    fn measure(&self) -> HighWater {
        #[cfg(feature = "valgrind")]
        let _quiet = super::valgrind::QuietErrors::new();
        let exact = self.painted;
        let (limit, size) = (self.limit() as *const u8, self.size());
        let none = HighWater { bytes: 0, exact };
        let Some(pages) = resident(limit, size) else {
            return HighWater {
                bytes: size,
                exact: false,
            };
        };
        let page = page_size();
        for (i, _) in pages.iter().enumerate().filter(|(_, &p)| p & 1 != 0) {
            let words = limit.wrapping_add(i * page).cast::<u64>();
            for w in 0..page / 8 {
                // SAFETY: a resident word of the usable range, mapped and
                // readable; page-aligned, so 8-aligned. Nothing writes it
                // meanwhile (no fiber runs on the stack: see above), and a
                // stale value only moves the mark.
                let v = unsafe { words.add(w).read_volatile() };
                if v != 0 && v != PAINT {
                    let addr = words as usize + w * 8;
                    return HighWater {
                        bytes: self.base() as usize - addr,
                        exact,
                    };
                }
            }
        }
        none
    }
}
