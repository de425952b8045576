//! Fiber stacks (interim minimal version; replaced by the full stack layer).

use std::io;
use std::ops::Range;

pub(crate) mod overflow;

/// A fiber stack: an mmap'd region with a guard page at its low end.
#[derive(Debug)]
pub struct Stack {
    map: memmap2::MmapMut,
    guard: usize,
}

impl Stack {
    /// The default usable size of a stack.
    pub const DEFAULT_SIZE: usize = 256 * 1024;

    /// Maps a new stack of at least `size` usable bytes.
    pub fn new(size: usize) -> io::Result<Stack> {
        let page = 4096;
        let size = size.div_ceil(page) * page;
        let map = memmap2::MmapOptions::new().len(size + page).map_anon()?;
        // SAFETY: the range is the first page of a mapping we own.
        let r = unsafe { libc::mprotect(map.as_ptr() as *mut _, page, libc::PROT_NONE) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Stack { map, guard: page })
    }

    /// The highest address of the stack (exclusive); 16-byte aligned.
    pub fn base(&self) -> *mut u8 {
        // SAFETY: one past the end of the mapping.
        unsafe { (self.map.as_ptr() as *mut u8).add(self.map.len()) }
    }

    /// Usable bytes (the guard excluded).
    pub fn size(&self) -> usize {
        self.map.len() - self.guard
    }

    /// The guard region's addresses.
    pub fn guard(&self) -> Range<usize> {
        let lo = self.map.as_ptr() as usize;
        lo..lo + self.guard
    }
}
