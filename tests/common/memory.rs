//! Looking at memory without touching it: the page size, and whether an
//! address is inaccessible (a guard), asked of the kernel so that the test
//! does not crash.
#![allow(dead_code)]

use std::io;

/// The system's page size.
pub fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Whether the kernel refuses to read one byte at `addr` (EFAULT): a
/// non-crashing check that an address is inaccessible.
pub fn kernel_refuses(addr: usize) -> bool {
    let mut fds = [0; 2];
    // SAFETY: `fds` is writable.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the kernel checks `addr` itself; the pipe is empty.
    let n = unsafe { libc::write(fds[1], addr as *const libc::c_void, 1) };
    let errno = io::Error::last_os_error().raw_os_error();
    // SAFETY: both opened above.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    n == -1 && errno == Some(libc::EFAULT)
}
