//! The crash matrix: the ways a fiber's stack can run out, or be abused by
//! signals and debuggers, each run in a child process (this test binary
//! again, `--exact`), whose signal or exit status and stderr are checked.
//!
//! What a fiber's overflow must give is the documented report,
//! "fiber '<name>' overflowed its <N> KiB stack" on stderr, then `SIGABRT`
//! (`src/stack/overflow.rs`); nothing here relies on how the handler finds
//! the fiber. Overflows that are not a fiber's keep what they would have
//! without spindle.
//!
//! Every case runs on x86_64 and on aarch64, natively or under qemu-user,
//! except one that qemu-user cannot host, skipped there only with the
//! reason printed ([`skip_on_qemu`]): the gdb backtrace (gdb cannot ptrace
//! an emulated guest). The main thread's own overflow is in
//! `tests/main_thread_overflow.rs` (it needs a binary without libtest).

#[path = "common/child.rs"]
mod child;
#[path = "common/emulation.rs"]
mod emulation;

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

use spindle::coroutine::{Builder, Coroutine, CoroutineResult, Yielder};

use child::text;

/// Environment variable telling a child which case to run.
const CASE: &str = "SPINDLE_CRASH_MATRIX_CASE";

/// In the child, runs `body` and returns `None` (the child's test then
/// passes if `body` returns); in the parent, re-runs test `name` as a child
/// and returns what it did.
fn in_child(name: &str, body: impl FnOnce()) -> Option<Output> {
    if child::is_child(CASE, name) {
        body();
        return None;
    }
    Some(child::run_child(CASE, name, name))
}

/// Whether to skip a case that qemu-user cannot emulate; prints why.
fn skip_on_qemu(test: &str, why: &str) -> bool {
    let skip = emulation::under_qemu();
    if skip {
        eprintln!("{test}: skipped under qemu-user: {why}");
    }
    skip
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_signal(out: &Output, signal: libc::c_int) {
    assert_eq!(out.status.signal(), Some(signal), "{}", text(out));
}

/// Asserts the documented overflow report for fiber `name` of `kib` KiB.
#[track_caller]
fn assert_fiber_overflow(out: &Output, name: &str, kib: usize) {
    assert_signal(out, libc::SIGABRT);
    let want = format!("fiber '{name}' overflowed its {kib} KiB stack");
    assert!(stderr(out).contains(&want), "no {want:?} in\n{}", text(out));
}

#[track_caller]
fn assert_passed(out: &Output) {
    assert!(out.status.success(), "child failed:\n{}", text(out));
}

/// Recurses forever with a frame of `N` bytes that is written, as Rust
/// code with big locals does (stack probes touch every page of it).
#[inline(never)]
fn recurse_with<const N: usize>(depth: u64) -> u64 {
    let mut frame = [0u8; N];
    frame[depth as usize % N] = depth as u8;
    let frame = black_box(frame);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse_with::<N>(depth + 1).wrapping_add(u64::from(frame[depth as usize % N]))
}

/// Runs `f` on a fresh fiber named `name` with a `kib` KiB stack.
fn on_fiber(name: &str, kib: usize, f: impl FnOnce() + 'static) {
    let mut co = Builder::new()
        .name(name)
        .stack_size(kib * 1024)
        .build(move |_y: &Yielder<(), ()>, ()| f())
        .expect("fiber");
    co.resume(());
}

// ---- overflows of a fiber -------------------------------------------------

#[test]
fn overflow_with_4k_frames_is_reported() {
    let Some(out) = in_child("overflow_with_4k_frames_is_reported", || {
        on_fiber("frames4k", 64, || {
            black_box(recurse_with::<4096>(0));
        })
    }) else {
        return;
    };
    assert_fiber_overflow(&out, "frames4k", 64);
}

#[test]
fn overflow_with_64k_frames_is_reported() {
    // One frame is as big as a guard page sixteen times over: Rust's stack
    // probes touch each of its pages from the top, so the first touch
    // below the stack lands in the guard, not past it.
    let Some(out) = in_child("overflow_with_64k_frames_is_reported", || {
        on_fiber("frames64k", 256, || {
            black_box(recurse_with::<65536>(0));
        })
    }) else {
        return;
    };
    assert_fiber_overflow(&out, "frames64k", 256);
}

/// What C's `for (;;) { char *p = alloca(1024); *p = 0; }` compiles to
/// without `-fstack-clash-protection`: the stack pointer moves down 1 KiB
/// at a time and each new block is written, with no probe of the pages in
/// between and no frame the unwinder knows about. Written as inline
/// assembly rather than C so that no test-only C object has to be built
/// into the library (a build script cannot tell a test build from a normal
/// one) and no C compiler is needed when the tests run; the instructions
/// are the ones gcc emits for that loop. The step is smaller than a guard
/// page, so the first write below the stack hits the guard. (A probe-less
/// frame larger than the guard can jump over it; that is the guard-size
/// question, not a case this matrix can assert.)
fn alloca_forever() -> ! {
    // SAFETY: deliberately runs the stack pointer down until a write faults
    // in the guard below the stack; the overflow handler then aborts the
    // process, so this never returns (and says so to the compiler).
    unsafe {
        #[cfg(target_arch = "x86_64")]
        std::arch::asm!(
            "2:",
            "sub rsp, 1024",
            "mov qword ptr [rsp], 0",
            "jmp 2b",
            options(noreturn)
        );
        #[cfg(target_arch = "aarch64")]
        std::arch::asm!(
            "2:",
            "sub sp, sp, #1024",
            "str xzr, [sp]",
            "b 2b",
            options(noreturn)
        );
    }
}

#[test]
fn overflow_by_alloca_style_frames_is_reported() {
    let Some(out) = in_child("overflow_by_alloca_style_frames_is_reported", || {
        on_fiber("alloca", 64, || alloca_forever())
    }) else {
        return;
    };
    assert_fiber_overflow(&out, "alloca", 64);
}

extern "C" fn recursing_handler(_sig: libc::c_int) {
    black_box(recurse_with::<256>(0));
}

#[test]
fn overflow_in_a_signal_handler_on_a_fiber_stack_is_reported() {
    // A handler installed without SA_ONSTACK runs on whatever stack was
    // current: here the fiber's, which it then overflows.
    let Some(out) = in_child(
        "overflow_in_a_signal_handler_on_a_fiber_stack_is_reported",
        || {
            // SAFETY: installs a plain handler for SIGUSR1 in a child
            // process that exists only for this case.
            unsafe {
                let handler: extern "C" fn(libc::c_int) = recursing_handler;
                libc::signal(libc::SIGUSR1, handler as libc::sighandler_t);
            }
            on_fiber("signalled", 64, || {
                // SAFETY: raise has no memory effects here.
                unsafe { libc::raise(libc::SIGUSR1) };
            });
        },
    ) else {
        return;
    };
    assert_fiber_overflow(&out, "signalled", 64);
}

// ---- overflows that are not a fiber's ---------------------------------------

/// Runs `f` on a thread made with `pthread_create` directly, so it has no
/// alternate signal stack and no guard record of Rust's, and waits for it.
fn on_raw_pthread(f: fn()) {
    extern "C" fn start(arg: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: `arg` is the `fn()` that `on_raw_pthread` passed.
        let f: fn() = unsafe { std::mem::transmute(arg) };
        f();
        std::ptr::null_mut()
    }
    // SAFETY: a standard pthread_create/pthread_join pair with a default
    // attribute object; `f` is a plain function pointer, valid forever.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        assert_eq!(libc::pthread_attr_init(&mut attr), 0);
        assert_eq!(libc::pthread_attr_setstacksize(&mut attr, 256 * 1024), 0);
        let mut t: libc::pthread_t = 0;
        let rc = libc::pthread_create(&mut t, &attr, start, f as *mut libc::c_void);
        assert_eq!(rc, 0, "pthread_create");
        libc::pthread_attr_destroy(&mut attr);
        libc::pthread_join(t, std::ptr::null_mut());
    }
}

#[test]
fn fiber_on_a_raw_pthread_overflow_is_reported() {
    // The thread has no alternate signal stack until spindle makes one for
    // its first fiber.
    let Some(out) = in_child("fiber_on_a_raw_pthread_overflow_is_reported", || {
        on_raw_pthread(|| {
            on_fiber("rawthread", 64, || {
                black_box(recurse_with::<256>(0));
            })
        })
    }) else {
        return;
    };
    assert_fiber_overflow(&out, "rawthread", 64);
}

#[test]
fn raw_pthread_overflow_without_an_alternate_stack_is_a_plain_segfault() {
    // The overflow handler is installed (a fiber ran on the main thread),
    // but this thread has no alternate stack: the kernel cannot run any
    // handler on the exhausted stack and kills the process with SIGSEGV.
    // Nothing may claim that a fiber overflowed.
    let Some(out) = in_child(
        "raw_pthread_overflow_without_an_alternate_stack_is_a_plain_segfault",
        || {
            on_fiber("bystander", 64, || {});
            on_raw_pthread(|| {
                black_box(recurse_with::<256>(0));
            });
        },
    ) else {
        return;
    };
    assert_signal(&out, libc::SIGSEGV);
    assert!(!stderr(&out).contains("fiber '"), "{}", text(&out));
}

// ---- deep stacks and signals that must not crash ----------------------------

/// The address of a local: roughly the current stack pointer.
#[inline(never)]
fn sp() -> usize {
    let x = 0u8;
    black_box(&x) as *const u8 as usize
}

/// Recurses until less than `left` bytes of stack remain above `limit`,
/// then runs `at_bottom` there.
#[inline(never)]
fn descend_to(limit: usize, left: usize, at_bottom: &mut dyn FnMut()) -> u64 {
    let frame = black_box([1u8; 64]);
    if sp() < limit + left {
        at_bottom();
        return 0;
    }
    descend_to(limit, left, at_bottom) + u64::from(frame[0])
}

const DEEP_KIB: usize = 64;
const YIELDS: u64 = 100_000;

#[test]
fn suspends_from_within_ten_percent_of_the_guard_do_not_crash() {
    // A coroutine on a stack whose limit we know exactly: it recurses until
    // less than a tenth of the stack is left, then suspends 100,000 times.
    let Some(out) = in_child(
        "suspends_from_within_ten_percent_of_the_guard_do_not_crash",
        || {
            let stack = spindle::Stack::new(DEEP_KIB * 1024).expect("stack");
            let limit = stack.limit() as usize;
            let mut co = Builder::new()
                .name("deep")
                .stack(stack)
                .build(move |y: &Yielder<(), u64>, ()| {
                    let mut n = 0u64;
                    let mut left = 0;
                    let depth = descend_to(limit, DEEP_KIB * 1024 / 10, &mut || {
                        left = sp() - limit;
                        for _ in 0..YIELDS {
                            y.suspend(n);
                            n += 1;
                        }
                    });
                    (depth, left, n)
                })
                .expect("coroutine");
            let mut resumed = 0u64;
            let (depth, left, n) = loop {
                match co.resume(()) {
                    CoroutineResult::Yield(n) => assert_eq!(n, resumed),
                    CoroutineResult::Return(r) => break r,
                }
                resumed += 1;
            };
            assert_eq!((n, resumed), (YIELDS, YIELDS));
            assert!(left < DEEP_KIB * 1024 / 10, "{left} bytes left");
            eprintln!("{depth} frames deep, {left} bytes above the guard");
        },
    ) else {
        return;
    };
    assert_passed(&out);
}

#[test]
fn yields_from_within_ten_percent_of_the_guard_do_not_crash() {
    // The same on a task, with yield_now (the scheduler's own code runs on
    // the task's stack too) and another task taking turns. The task API
    // does not show the stack's limit, so it is taken as DEEP_KIB below
    // the first frame, which is a little below the true top: the fiber
    // ends up somewhat deeper than 90%, never less deep.
    let Some(out) = in_child(
        "yields_from_within_ten_percent_of_the_guard_do_not_crash",
        || {
            let ticks = spindle::run(|| {
                let ticker = spindle::spawn(|| {
                    let mut n = 0u64;
                    while n < YIELDS {
                        spindle::yield_now();
                        n += 1;
                    }
                    n
                });
                let deep = spindle::Builder::new()
                    .name("deep".into())
                    .stack_size(DEEP_KIB * 1024)
                    .spawn(|| {
                        let limit = sp() - DEEP_KIB * 1024;
                        let mut yields = 0u64;
                        descend_to(limit, DEEP_KIB * 1024 / 10, &mut || {
                            for _ in 0..YIELDS {
                                spindle::yield_now();
                                yields += 1;
                            }
                        });
                        yields
                    })
                    .expect("spawn");
                (deep.join().unwrap(), ticker.join().unwrap())
            });
            assert_eq!(ticks, (YIELDS, YIELDS));
        },
    ) else {
        return;
    };
    assert_passed(&out);
}

/// SIGALRMs handled so far.
static ALARMS: AtomicU64 = AtomicU64::new(0);

extern "C" fn dirtying_handler(_sig: libc::c_int) {
    // Writes 2 KiB of the stack it runs on, below wherever the interrupted
    // code had its stack pointer: anything the switch kept below it would
    // be overwritten.
    let mut junk = [0xa5u8; 2048];
    for (i, b) in junk.iter_mut().enumerate() {
        // SAFETY: a volatile write to a local array.
        unsafe { std::ptr::write_volatile(b, i as u8) };
    }
    black_box(&junk);
    ALARMS.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn sigalrm_storm_during_ping_pong_switching_changes_nothing() {
    let Some(out) = in_child(
        "sigalrm_storm_during_ping_pong_switching_changes_nothing",
        || {
            // SAFETY: in a child that exists for this case: a SIGALRM handler
            // (no SA_ONSTACK, so it runs on the fiber's or the main stack,
            // whichever is current) and a 50 µs interval timer.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = dirtying_handler as extern "C" fn(libc::c_int) as usize;
                sa.sa_flags = libc::SA_RESTART;
                assert_eq!(libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut()), 0);
                let every = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 50,
                };
                let timer = libc::itimerval {
                    it_interval: every,
                    it_value: every,
                };
                assert_eq!(
                    libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()),
                    0
                );
            }
            // At least this many switches, and on until this many alarms came.
            let (min_rounds, min_alarms) = (200_000u64, 2_000u64);
            let mut co = Coroutine::new(|y: &Yielder<u64, u64>, mut x: u64| {
                let mut acc = 0u64;
                loop {
                    acc = acc.wrapping_mul(31).wrapping_add(x);
                    x = y.suspend(acc ^ x);
                }
            });
            let mut acc = 0u64;
            let mut x = 0u64;
            let start = std::time::Instant::now();
            while x < min_rounds
                || (ALARMS.load(Ordering::Relaxed) < min_alarms && start.elapsed().as_secs() < 60)
            {
                let got = match co.resume(x) {
                    CoroutineResult::Yield(v) => v,
                    CoroutineResult::Return(()) => unreachable!(),
                };
                acc = acc.wrapping_mul(31).wrapping_add(x);
                assert_eq!(got, acc ^ x, "switch {x} came back wrong");
                x += 1;
            }
            // SAFETY: stops the timer.
            unsafe {
                let off: libc::itimerval = std::mem::zeroed();
                libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut());
            }
            let alarms = ALARMS.load(Ordering::Relaxed);
            eprintln!("{x} round trips, {alarms} SIGALRMs handled");
            assert!(
                alarms >= min_alarms,
                "only {alarms} SIGALRMs in a minute: no storm"
            );
        },
    ) else {
        return;
    };
    assert_passed(&out);
}

// ---- a panic while unwinding --------------------------------------------------

/// Panics when dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("PanicsOnDrop dropped");
    }
}

#[test]
fn panic_in_a_destructor_during_a_forced_unwind_aborts() {
    // Dropping a suspended coroutine unwinds its stack (a forced unwind); a
    // destructor that panics there panics while the fiber is unwinding, and
    // Rust aborts the process for that, as it does on any thread: nothing
    // can catch it (see "Panics and unwinding" in src/coroutine.rs).
    let Some(out) = in_child(
        "panic_in_a_destructor_during_a_forced_unwind_aborts",
        || {
            let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| {
                let _bomb = PanicsOnDrop;
                y.suspend(());
            });
            co.resume(());
            drop(co);
            eprintln!("survived the drop");
        },
    ) else {
        return;
    };
    assert_signal(&out, libc::SIGABRT);
    let err = stderr(&out);
    assert!(err.contains("PanicsOnDrop dropped"), "{}", text(&out));
    assert!(
        err.contains("panic in a destructor during cleanup"),
        "{}",
        text(&out)
    );
    assert!(!err.contains("survived the drop"), "{}", text(&out));
}

// ---- a debugger -------------------------------------------------------------

#[inline(never)]
fn resumer_frame_marker(co: &mut Coroutine<(), (), ()>) {
    co.resume(());
    black_box(());
}

#[inline(never)]
fn fiber_frame_marker() {
    // SAFETY: stops the process for the debugger that runs it.
    unsafe { libc::raise(libc::SIGTRAP) };
    black_box(());
}

#[test]
fn gdb_backtrace_in_a_fiber_reaches_the_resumer() {
    const TEST: &str = "gdb_backtrace_in_a_fiber_reaches_the_resumer";
    if child::is_child(CASE, TEST) {
        let mut co = Coroutine::new(|_y: &Yielder<(), ()>, ()| fiber_frame_marker());
        resumer_frame_marker(&mut co);
        return;
    }
    if skip_on_qemu(
        TEST,
        "gdb cannot ptrace a qemu-user guest (that needs qemu's gdbstub and gdb-multiarch)",
    ) {
        return;
    }
    let gdb = Command::new("gdb").arg("--version").output();
    if !gdb.is_ok_and(|o| o.status.success()) {
        eprintln!("{TEST}: skipped: gdb is not installed");
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new("gdb")
        .args(["-nx", "-batch", "-ex", "run", "-ex", "bt", "--args"])
        .arg(exe)
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, TEST)
        .output()
        .expect("run gdb");
    let bt = String::from_utf8_lossy(&out.stdout);
    let fiber = bt.find("fiber_frame_marker");
    let resumer = bt.find("resumer_frame_marker");
    assert!(
        matches!((fiber, resumer), (Some(f), Some(r)) if f < r),
        "the backtrace from inside the fiber does not reach the resumer's frames:\n{}",
        text(&out)
    );
}
