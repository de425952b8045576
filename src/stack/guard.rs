//! Guard regions: the inaccessible pages at the low end of every stack, and
//! the two ways of making them.
//!
//! | kind | how | VMAs per stack | needs |
//! |---|---|---|---|
//! | [`GuardKind::Madvise`] | `madvise(MADV_GUARD_INSTALL)` writes guard markers into the page tables | 0 (the chunk's one VMA is shared) | Linux 6.13+ |
//! | [`GuardKind::Mprotect`] | `mprotect(PROT_NONE)` on the guard pages | 2 (guard + usable: the protection change splits the mapping) | any kernel |
//!
//! A guard marker survives `MADV_DONTNEED` (only `MADV_GUARD_REMOVE` or
//! `munmap` clear it), so a stack slot keeps its guard for as long as its
//! chunk is mapped, whatever happens to the usable pages above it.
//!
//! ## Invariants
//!
//! - [`GuardKind::preferred`] answers `Madvise` only after this process has
//!   seen a guard marker actually *refuse* an access (the probe below). An
//!   emulator such as qemu-user answers 0 to any `madvise` advice it does not
//!   know and then lets the access through; a guard that only looks installed
//!   would turn every fiber overflow into silent memory corruption.
//! - Once the answer is `Mprotect` it never goes back to `Madvise` (a later
//!   `EINVAL` from a chunk demotes it; see [`demote_madvise`]).
//!
//! ## The probe
//!
//! Once per process: map one page, install a guard marker on it, and ask the
//! kernel to read a byte of it with `write(2)` into a fresh pipe. A real guard
//! makes that `write` fail with `EFAULT`; any other outcome means "do not rely
//! on madvise guards here". Seven syscalls (mmap, madvise, pipe2, write, two
//! closes, munmap), paid by the first stack the process maps.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};

/// `MADV_GUARD_INSTALL` from `<linux/mman.h>` (Linux 6.13): turn the range
/// into guard markers. Spelled out here because not every `libc` release
/// names it.
pub(super) const MADV_GUARD_INSTALL: libc::c_int = 102;

/// How the guard region below a stack is made inaccessible.
///
/// Both kinds give the same protection: any access to the guard raises
/// `SIGSEGV`, which the overflow handler turns into a report naming the
/// fiber. They differ in what they cost the process; see the
/// [module documentation](crate::stack#guard-regions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuardKind {
    /// `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+): guard markers inside one
    /// large mapping shared by many stacks, so the number of stacks is not
    /// capped by `vm.max_map_count`.
    Madvise,
    /// `mprotect(PROT_NONE)` on a mapping of its own per stack: works on
    /// every kernel and emulator, but each stack uses two of the process's
    /// `vm.max_map_count` memory maps.
    Mprotect,
}

/// Not probed yet.
const UNKNOWN: u8 = 0;
/// Madvise guards are enforced in this process.
const MADVISE: u8 = 1;
/// Madvise guards are missing or not enforced: use mprotect.
const MPROTECT: u8 = 2;

/// The cached answer of [`GuardKind::preferred`].
static PREFERRED: AtomicU8 = AtomicU8::new(UNKNOWN);

impl GuardKind {
    /// The kind [`Stack::new`](crate::stack::Stack::new) uses in this
    /// process: [`Madvise`](GuardKind::Madvise) where the kernel really
    /// enforces guard markers, else [`Mprotect`](GuardKind::Mprotect).
    ///
    /// The first call runs the probe described in the
    /// [module documentation](crate::stack#guard-regions); later calls are
    /// one atomic load. If the probe cannot run (no memory, no file
    /// descriptors), this answers `Mprotect` without caching it, and a later
    /// call probes again.
    #[inline]
    pub fn preferred() -> GuardKind {
        match PREFERRED.load(Ordering::Relaxed) {
            MADVISE => GuardKind::Madvise,
            MPROTECT => GuardKind::Mprotect,
            _ => detect(),
        }
    }

    /// Whether stacks with this kind of guard can be made in this process.
    /// Always true for [`Mprotect`](GuardKind::Mprotect).
    pub fn is_available(self) -> bool {
        match self {
            GuardKind::Mprotect => true,
            GuardKind::Madvise => GuardKind::preferred() == GuardKind::Madvise,
        }
    }
}

/// Runs the probe and caches a definite answer.
#[cold]
fn detect() -> GuardKind {
    match probe_madvise() {
        Ok(true) => {
            PREFERRED.store(MADVISE, Ordering::Relaxed);
            GuardKind::Madvise
        }
        Ok(false) => {
            PREFERRED.store(MPROTECT, Ordering::Relaxed);
            GuardKind::Mprotect
        }
        // Could not tell (out of memory or descriptors): answer the kind
        // that always works and try again next time.
        Err(_) => GuardKind::Mprotect,
    }
}

/// Stops using madvise guards for the rest of the process: a chunk's guard
/// installation answered `EINVAL` although the probe had succeeded (for
/// example after `mlockall`, whose locked mappings refuse guard markers).
pub(super) fn demote_madvise() {
    PREFERRED.store(MPROTECT, Ordering::Relaxed);
}

/// Whether `MADV_GUARD_INSTALL` exists *and* is enforced: `Ok(false)` for a
/// definite no, `Err` when the question could not be asked.
fn probe_madvise() -> io::Result<bool> {
    let page = super::page_size();
    let probe = memmap2::MmapOptions::new().len(page).map_anon()?;
    let addr = probe.as_ptr() as *mut libc::c_void;
    // SAFETY: `addr..addr + page` is exactly the mapping we just created and
    // own; nothing else refers to it, so turning it into a guard is harmless.
    let r = unsafe { libc::madvise(addr, page, MADV_GUARD_INSTALL) };
    if r != 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            // Too old a kernel (unknown advice), or a mapping kind that
            // refuses guard markers: a definite no.
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EPERM) => Ok(false),
            _ => Err(err),
        };
    }
    let refused = kernel_refuses(addr as usize);
    drop(probe);
    refused
}

/// Whether the kernel refuses to read the byte at `addr` (`EFAULT`), asked
/// without touching it: the kernel copies it into a fresh pipe, which a
/// guard makes fail. `Err` if no pipe can be had.
pub(super) fn kernel_refuses(addr: usize) -> io::Result<bool> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two descriptors, as pipe2 wants.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The pipe is new and empty, so writing one byte cannot block.
    // SAFETY: `fds[1]` is the pipe's write end, opened above; the kernel
    // checks the access to `addr` itself.
    let n = unsafe { libc::write(fds[1], addr as *const libc::c_void, 1) };
    let errno = io::Error::last_os_error().raw_os_error();
    // SAFETY: both descriptors were opened above and are closed once.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    Ok(n == -1 && errno == Some(libc::EFAULT))
}

/// Makes `addr..addr + len` a guard region of the given kind.
///
/// # Errors
///
/// The OS error of `madvise` or `mprotect`, unchanged (`EINVAL` from
/// `madvise` means the kernel does not know `MADV_GUARD_INSTALL`; `ENOMEM`
/// from `mprotect` usually means `vm.max_map_count` was reached).
///
/// # Safety
///
/// `addr` must be page-aligned, `len` a multiple of the page size, and the
/// range must lie inside an anonymous private mapping owned by the caller,
/// none of whose contents anyone will read again.
pub(super) unsafe fn install(kind: GuardKind, addr: *mut u8, len: usize) -> io::Result<()> {
    let r = match kind {
        // SAFETY: the caller guarantees an owned, page-aligned range nobody
        // uses; guard markers drop whatever was there.
        GuardKind::Madvise => unsafe { libc::madvise(addr.cast(), len, MADV_GUARD_INSTALL) },
        // SAFETY: as above; revoking access to unused pages of our own
        // mapping affects no one else.
        GuardKind::Mprotect => unsafe { libc::mprotect(addr.cast(), len, libc::PROT_NONE) },
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
