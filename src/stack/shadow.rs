//! Shadow stacks (Intel CET `SHSTK` on x86_64, Arm GCS on aarch64): why
//! spindle cannot run under them, and the check that says so instead of
//! letting the first switch kill the process.
//!
//! A shadow stack is a second stack of return addresses that only `call`
//! and `ret` can write: every call pushes on both stacks, every return pops
//! both and traps if they differ (x86_64: a control-protection fault,
//! delivered as `SIGSEGV` with `si_code` `SEGV_CPERR`; aarch64: a GCS
//! fault). There is one per thread. spindle's switch keeps one call and one
//! return per resume/suspend round trip (see "Return-address prediction" in
//! `asm/x86_64.S`), but the return that ends a suspend is executed on the
//! fiber, right after the fiber's own calls: the top of the thread's shadow
//! stack is then the fiber's last return address, not the resumer's, and
//! the `ret` traps. Running fibers under shadow stacks would take one
//! shadow stack per fiber (`map_shadow_stack(2)`) and a switch that swaps
//! it too (`rstorssp`/`saveprevssp`, as Boost.Context's CET build does).
//!
//! ## When they are enforced
//!
//! The kernel (Linux 6.6+ on x86_64 with `CONFIG_X86_USER_SHADOW_STACK`,
//! 6.13+ for arm64 GCS) starts every program without them. glibc 2.39+
//! turns them on at startup only for a program that is marked as supporting
//! them (`GNU_PROPERTY_X86_FEATURE_1_SHSTK` in its `.note.gnu.property`),
//! and the linker marks a program only if *every* object in it is marked;
//! or when forced with `GLIBC_TUNABLES=glibc.cpu.x86_shstk=on`. spindle's
//! assembly object carries no property note (`readelf -n` on it shows no
//! notes at all; on a test binary, only the ABI tag and the build id), and
//! stable rustc does not mark its own objects either, so a program linking
//! spindle is never marked and runs without shadow stacks. Only a forced
//! tunable, or a program that enables them itself (`arch_prctl`,
//! `prctl`), can turn them on.
//!
//! ## The check
//!
//! Before the process's first stack is made, spindle asks the kernel
//! whether this thread has a shadow stack (`arch_prctl(ARCH_SHSTK_STATUS)`
//! on x86_64, `prctl(PR_GET_SHADOW_STACK_STATUS)` on aarch64; a kernel
//! without support answers `EINVAL`, which means no). If it has, making a
//! stack fails with [`io::ErrorKind::Unsupported`] naming the cause, so
//! `Coroutine::new` panics with that message and the builders return it,
//! instead of a bare `SIGSEGV` at the first switch. The answer is kept for
//! the whole process: glibc decides at startup, for every thread.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

/// The process's answer, asked once.
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether this process runs with shadow stacks enabled (asked of the
/// kernel once); if so, no stack can be made (see the [module docs](self)).
///
/// # Examples
///
/// ```
/// use spindle::stack::{shadow, Stack};
///
/// // Either no shadow stack, and stacks are made; or one, and they are
/// // refused with a clear error instead of a crash at the first switch.
/// match Stack::new(64 * 1024) {
///     Ok(_) => assert!(!shadow::enabled()),
///     Err(e) => {
///         assert!(shadow::enabled());
///         assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
///     }
/// }
/// ```
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        UNKNOWN => {
            let on = ask_kernel();
            STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
            on
        }
        state => state == ON,
    }
}

/// `Ok` unless shadow stacks are enforced (module docs).
pub(super) fn check() -> io::Result<()> {
    if enabled() {
        return Err(refusal());
    }
    Ok(())
}

/// The error of a stack refused because shadow stacks are enforced.
fn refusal() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "shadow stacks (CET / GCS) are enforced for this process: spindle's \
         context switch returns on another stack, which they forbid; run \
         without them (e.g. unset GLIBC_TUNABLES=glibc.cpu.x86_shstk=on)",
    )
}

#[cfg(target_arch = "x86_64")]
fn ask_kernel() -> bool {
    /// `ARCH_SHSTK_STATUS` from `<asm/prctl.h>`.
    const ARCH_SHSTK_STATUS: libc::c_long = 0x5005;
    /// `ARCH_SHSTK_SHSTK`: the shadow stack is enabled.
    const ARCH_SHSTK_SHSTK: u64 = 1;
    let mut features: u64 = 0;
    // SAFETY: ARCH_SHSTK_STATUS writes one u64 at the address given, which
    // is `features`; kernels without it fail with EINVAL and write nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_SHSTK_STATUS,
            &mut features as *mut u64,
        )
    };
    r == 0 && features & ARCH_SHSTK_SHSTK != 0
}

#[cfg(target_arch = "aarch64")]
fn ask_kernel() -> bool {
    /// `PR_GET_SHADOW_STACK_STATUS` from `<linux/prctl.h>`.
    const PR_GET_SHADOW_STACK_STATUS: libc::c_int = 74;
    /// `PR_SHADOW_STACK_ENABLE`.
    const PR_SHADOW_STACK_ENABLE: libc::c_ulong = 1;
    let mut status: libc::c_ulong = 0;
    // SAFETY: PR_GET_SHADOW_STACK_STATUS writes one unsigned long at the
    // address given, which is `status`; kernels without it fail with
    // EINVAL and write nothing.
    let r = unsafe {
        libc::prctl(
            PR_GET_SHADOW_STACK_STATUS,
            &mut status as *mut libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    r == 0 && status & PR_SHADOW_STACK_ENABLE != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test machines run without shadow stacks (no CPU support, or a
    /// program not marked for them): the check must say so and let stacks
    /// be made; the kernel's answer is read, not assumed.
    #[test]
    fn not_enforced_here_and_stacks_are_allowed() {
        assert!(!ask_kernel());
        assert!(!enabled());
        assert!(check().is_ok());
    }

    /// What a program under shadow stacks gets instead of a crash.
    #[test]
    fn the_refusal_names_the_cause() {
        let e = refusal();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert!(e.to_string().contains("shadow stacks"), "{e}");
    }
}
