//! Stack-overflow reporting (interim: records the running fiber only).

use std::cell::Cell;

/// What the overflow handler needs to know about the running fiber.
#[derive(Debug)]
#[allow(dead_code)] // read by the overflow handler (full stack layer)
pub(crate) struct FiberInfo {
    pub(crate) guard_start: usize,
    pub(crate) guard_end: usize,
    pub(crate) stack_size: usize,
    pub(crate) name_ptr: *const u8,
    pub(crate) name_len: usize,
}

thread_local! {
    static CURRENT: Cell<*const FiberInfo> = const { Cell::new(std::ptr::null()) };
}

/// Makes `info` the running fiber's record and returns the previous one.
#[inline]
pub(crate) fn swap_current(info: *const FiberInfo) -> *const FiberInfo {
    CURRENT.with(|c| c.replace(info))
}

/// Installs the handler (process-wide, once) and this thread's signal stack.
#[inline]
pub(crate) fn ensure_installed() {}
