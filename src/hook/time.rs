//! The sleeps: `nanosleep`, `clock_nanosleep` (relative and
//! `TIMER_ABSTIME`), `sleep`, `usleep`.
//!
//! On a fiber each becomes [`spindle::sleep_until`](crate::sleep_until):
//! the fiber parks on the runtime's timer and other fibers run. Elsewhere,
//! and for arguments libc would reject (a negative or out-of-range
//! `timespec`, a clock other than `CLOCK_MONOTONIC`, `CLOCK_REALTIME`,
//! `CLOCK_BOOTTIME`), the call goes straight to libc, which returns at once
//! with its error or blocks the thread.
//!
//! What each returns on a fiber is what the blocking call returns after a
//! full sleep: 0 (`sleep`: 0 seconds left). If the sleep ends early — only
//! when the runtime shuts down under an unwinding fiber — `nanosleep`
//! returns -1 with `EINTR` and the time left in `*rem`, `clock_nanosleep`
//! returns `EINTR` (its error code, it never sets `errno`), as they do when a
//! signal interrupts them. A signal does not interrupt a parked fiber: it
//! reaches the thread (the scheduler), not the fiber.
//!
//! An absolute `CLOCK_REALTIME` deadline is turned into a duration once, at
//! the call: a later change of the wall clock does not move it.

use std::time::{Duration, Instant};

use libc::{c_int, c_uint, clockid_t, timespec, useconds_t};

use super::io::{errno, on_fiber, set_errno};
use super::symbols as real;

/// A `timespec` as a duration, if it is one libc accepts.
fn duration(ts: &timespec) -> Option<Duration> {
    (ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec))
        .then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Parks the fiber until `dur` from now; returns the time left if the
/// sleep ended early (see the module docs).
fn park_for(dur: Duration) -> Option<Duration> {
    let now = Instant::now();
    let deadline = now
        .checked_add(dur)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
    let saved = errno();
    crate::sleep_until(deadline);
    set_errno(saved);
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

fn timespec_of(d: Duration) -> timespec {
    timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// Hook of `nanosleep(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `nanosleep(2)`: `req` valid for reads, `rem` null or valid for
/// writes.
#[no_mangle]
pub unsafe extern "C-unwind" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    // SAFETY: the caller passes a readable `req` (a null one goes to libc).
    let dur = (!req.is_null())
        .then(|| unsafe { *req })
        .and_then(|r| duration(&r));
    match dur {
        Some(dur) if on_fiber() => match park_for(dur) {
            None => 0,
            Some(left) => {
                if !rem.is_null() {
                    // SAFETY: the caller's `rem`, valid for writes.
                    unsafe { *rem = timespec_of(left) };
                }
                set_errno(libc::EINTR);
                -1
            }
        },
        // SAFETY: the caller's arguments, passed on unchanged.
        _ => unsafe { real::nanosleep(req, rem) },
    }
}

/// The clocks a fiber can sleep on, and their current time.
fn now_on(clock: clockid_t) -> Option<Duration> {
    if !matches!(
        clock,
        libc::CLOCK_MONOTONIC | libc::CLOCK_REALTIME | libc::CLOCK_BOOTTIME
    ) {
        return None;
    }
    let mut ts = timespec_of(Duration::ZERO);
    // SAFETY: `ts` is valid for writes.
    (unsafe { libc::clock_gettime(clock, &mut ts) } == 0).then(|| duration(&ts))?
}

/// Hook of `clock_nanosleep(2)`; see the [module docs](self). Returns 0 or
/// an error code, never sets `errno`.
///
/// # Safety
///
/// As `clock_nanosleep(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    // SAFETY: the caller passes a readable `req` (a null one goes to libc).
    let dur = (!req.is_null())
        .then(|| unsafe { *req })
        .and_then(|r| duration(&r));
    let now = now_on(clock);
    match (dur, now) {
        (Some(dur), Some(now)) if on_fiber() => {
            let absolute = flags & libc::TIMER_ABSTIME != 0;
            let dur = if absolute {
                dur.saturating_sub(now)
            } else {
                dur
            };
            match park_for(dur) {
                None => 0,
                Some(left) => {
                    if !absolute && !rem.is_null() {
                        // SAFETY: the caller's `rem`, valid for writes.
                        unsafe { *rem = timespec_of(left) };
                    }
                    libc::EINTR
                }
            }
        }
        // SAFETY: the caller's arguments, passed on unchanged.
        _ => unsafe { real::clock_nanosleep(clock, flags, req, rem) },
    }
}

/// Hook of `sleep(3)`; see the [module docs](self).
///
/// # Safety
///
/// None beyond libc's; `unsafe` as every hook is.
#[no_mangle]
pub unsafe extern "C-unwind" fn sleep(secs: c_uint) -> c_uint {
    if !on_fiber() {
        // SAFETY: no pointers.
        return unsafe { real::sleep(secs) };
    }
    match park_for(Duration::from_secs(secs.into())) {
        None => 0,
        // Rounded up, as glibc does.
        Some(left) => left.as_secs_f64().ceil() as c_uint,
    }
}

/// Hook of `usleep(3)`; see the [module docs](self).
///
/// # Safety
///
/// None beyond libc's; `unsafe` as every hook is.
#[no_mangle]
pub unsafe extern "C-unwind" fn usleep(usecs: useconds_t) -> c_int {
    if !on_fiber() {
        // SAFETY: no pointers.
        return unsafe { real::usleep(usecs) };
    }
    match park_for(Duration::from_micros(usecs.into())) {
        None => 0,
        Some(_) => {
            set_errno(libc::EINTR);
            -1
        }
    }
}
