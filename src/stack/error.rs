//! Why a stack could not be had.
//!
//! Two families, both returned as [`io::Error`]:
//!
//! - a bad size (zero, below [`Stack::MIN_SIZE`], above [`Stack::MAX_SIZE`])
//!   is [`io::ErrorKind::InvalidInput`] with a message saying which bound;
//! - a refusal by the kernel (`mmap`, `mprotect`, `madvise`) is a
//!   [`StackError`] inside an `io::Error` of the *same kind* as the OS error,
//!   whose [`source`](std::error::Error::source) is the OS error itself
//!   (so [`io::Error::raw_os_error`] of the source gives `ENOMEM` and the
//!   like). For `ENOMEM` the message names the likely cause, with the
//!   numbers read at the time of the failure: the process's count of memory
//!   maps against `vm.max_map_count`, and `RLIMIT_AS`.
//!
//! Building these errors allocates a little and reads two small files under
//! `/proc`; it happens only on the failure path, never in a signal handler.

use std::fmt;
use std::io::{self, Read};

use super::Stack;

/// What the stack layer was doing when the kernel said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// Mapping a chunk of address space for stack slots.
    Map,
    /// Installing a guard region (`madvise` or `mprotect`).
    Guard,
}

/// A stack could not be mapped or guarded: the operation, the OS error, and
/// the likely cause.
///
/// Carried inside the [`io::Error`] that [`Stack::new`] and
/// [`Stack::with_guard`] return; that error has the OS error's
/// [`kind`](io::Error::kind). Get at it with
/// `err.get_ref().and_then(|e| e.downcast_ref::<StackError>())`.
#[derive(Debug)]
pub struct StackError {
    op: Op,
    stack_size: usize,
    bytes: usize,
    cause: io::Error,
    hint: Option<String>,
}

impl StackError {
    /// The error the kernel returned, as it returned it.
    pub fn os_error(&self) -> &io::Error {
        &self.cause
    }

    /// The usable size of the stack that was asked for, in bytes.
    pub fn stack_size(&self) -> usize {
        self.stack_size
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.op {
            Op::Map => "mmap",
            Op::Guard => "guard installation",
        };
        write!(
            f,
            "cannot get a {} KiB fiber stack: {} of {} KiB failed: {}",
            self.stack_size / 1024,
            what,
            self.bytes / 1024,
            self.cause
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// Wraps the OS error `cause` of `op` (on `bytes` bytes, for stacks of
/// `stack_size` usable bytes) into an `io::Error` of the same kind.
#[cold]
pub(super) fn os_failure(op: Op, stack_size: usize, bytes: usize, cause: io::Error) -> io::Error {
    let hint = match cause.raw_os_error() {
        Some(libc::ENOMEM) => Some(enomem_hint()),
        Some(libc::EINVAL) if op == Op::Guard => {
            Some("the kernel refused the guard (MADV_GUARD_INSTALL needs Linux 6.13+)".to_string())
        }
        _ => None,
    };
    let kind = cause.kind();
    io::Error::new(
        kind,
        StackError {
            op,
            stack_size,
            bytes,
            cause,
            hint,
        },
    )
}

/// The `InvalidInput` error for a stack size outside the supported bounds.
#[cold]
pub(super) fn bad_size(size: usize) -> io::Error {
    let msg = if size == 0 {
        format!(
            "stack size 0 is invalid: a stack needs at least Stack::MIN_SIZE ({} bytes)",
            Stack::MIN_SIZE
        )
    } else if size < Stack::MIN_SIZE {
        format!(
            "stack size {size} bytes is below Stack::MIN_SIZE ({} bytes)",
            Stack::MIN_SIZE
        )
    } else {
        format!(
            "stack size {size} bytes exceeds Stack::MAX_SIZE ({} bytes): rounding it up to \
             pages and adding the guard would overflow the address space",
            Stack::MAX_SIZE
        )
    };
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The `Unsupported` error of `Stack::with_guard(_, GuardKind::Madvise)` in a
/// process where madvise guards are not enforced.
#[cold]
pub(super) fn madvise_unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "madvise guard regions (MADV_GUARD_INSTALL) are not enforced in this process: the \
         kernel is older than 6.13, or it accepts the advice without effect (as qemu-user \
         does); use GuardKind::Mprotect",
    )
}

/// Names the likely cause of an `ENOMEM` from mmap/mprotect/madvise, with the
/// numbers in force now.
fn enomem_hint() -> String {
    let max_maps = read_max_map_count();
    let maps = count_maps();
    let as_limit = address_space_limit();
    let max_text = max_maps.map_or_else(|| "unreadable".to_string(), |m| m.to_string());
    let maps_text = maps.map_or_else(|| "unknown".to_string(), |m| m.to_string());
    let as_text = match as_limit {
        Some(bytes) => format!("{} MiB", bytes >> 20),
        None => "unlimited".to_string(),
    };
    // Within 1/64 of the limit counts as at it: the maps the process sees
    // can undercount (an emulator such as qemu-user hides its own).
    let at_map_limit = matches!((maps, max_maps), (Some(n), Some(max)) if n >= max - max / 64);
    if at_map_limit {
        format!(
            "likely cause: the process has {maps_text} memory maps, at the limit \
             vm.max_map_count = {max_text} (each mprotect-guarded stack takes two; \
             raise the sysctl or use fewer stacks); RLIMIT_AS is {as_text}"
        )
    } else if as_limit.is_some() {
        format!(
            "likely cause: the address-space limit RLIMIT_AS ({as_text}, see `ulimit -v`) \
             is exhausted; vm.max_map_count is {max_text} with {maps_text} maps in use"
        )
    } else {
        format!(
            "likely cause: out of memory or address space; RLIMIT_AS is {as_text}, \
             vm.max_map_count is {max_text} with {maps_text} maps in use"
        )
    }
}

/// `vm.max_map_count`, from `/proc/sys/vm/max_map_count`.
fn read_max_map_count() -> Option<u64> {
    let mut buf = [0u8; 32];
    let mut file = std::fs::File::open("/proc/sys/vm/max_map_count").ok()?;
    let n = file.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

/// The process's memory maps: the lines of `/proc/self/maps`. Read through a
/// small buffer on the stack, as the heap may be short of room right now.
fn count_maps() -> Option<u64> {
    let mut file = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buf = [0u8; 1024];
    let mut lines = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The soft `RLIMIT_AS` in bytes; `None` when unlimited or unreadable.
fn address_space_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0 {
        return None;
    }
    (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}
