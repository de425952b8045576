//! Whether this test binary runs under user-mode emulation (qemu-user).
//!
//! qemu-user runs a guest binary as a host process, and the kernel's
//! `/proc/cpuinfo` still describes the host. So an aarch64 binary that
//! finds no `CPU implementer` line there (every arm64 kernel prints one per
//! CPU) is not running on an arm64 kernel: it is emulated. An x86_64
//! binary is taken to run natively (no x86_64 emulation is used here).
#![allow(dead_code)]

/// Whether this process is an emulated aarch64 binary (see the module docs).
pub fn under_qemu() -> bool {
    cfg!(target_arch = "aarch64")
        && !std::fs::read_to_string("/proc/cpuinfo")
            .is_ok_and(|info| info.lines().any(|l| l.starts_with("CPU implementer")))
}
