//! Stack high-water marks in the dump: a fiber that recursed ~100 KiB is
//! reported within a page of the truth (measured from its stack pointer
//! at the deepest point); a stack reused from the pool reports only its
//! new fiber's use; taking a dump does not raise the marks; and the
//! per-name summary gives its advice. Tracking is on in this whole binary.

mod common;

use std::cell::Cell;
use std::hint::black_box;

use common::dump::fiber;

const STACK: usize = 192 * 1024;

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

thread_local! {
    /// The lowest stack address a local reached, in this thread's
    /// recursion (per thread: libtest runs the tests of this file in
    /// parallel, and another test's fiber recurses too).
    static DEEPEST: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Recurses `depth` frames of about 1 KiB each, recording the address of
/// the deepest frame's buffer.
#[inline(never)]
fn recurse(depth: usize) -> u64 {
    let buf = black_box([depth as u8; 1000]);
    let here = buf.as_ptr() as usize;
    DEEPEST.with(|d| d.set(d.get().min(here)));
    if depth == 0 {
        return u64::from(buf[0]);
    }
    recurse(depth - 1) + u64::from(black_box(&buf)[999])
}

/// The base of the calling fiber's stack: stacks end on a page boundary,
/// and the closure's frame sits less than a page below it.
#[inline(never)]
fn stack_base() -> usize {
    let local = black_box(0u8);
    let at = &local as *const u8 as usize;
    (at + page() - 1) & !(page() - 1)
}

fn setup() {
    spindle::stack::set_high_water_tracking(true);
}

#[test]
fn a_fiber_that_recursed_100_kib_is_reported_within_a_page_of_the_truth() {
    setup();
    spindle::run(|| {
        let (tx, rx) = spindle::sync::channel::<usize>();
        let deep = spindle::Builder::new()
            .name("deep".into())
            .stack_size(STACK)
            .spawn(move || {
                let base = stack_base();
                DEEPEST.with(|d| d.set(usize::MAX));
                black_box(recurse(100));
                let truth = base - DEEPEST.with(Cell::get);
                tx.send(truth).unwrap();
                spindle::park(); // shallow again, and suspended
            })
            .unwrap();
        let truth = rx.recv().unwrap();
        assert!((100 * 1000..STACK).contains(&truth), "{truth}");
        let dump = spindle::dump();
        let d = fiber(&dump, "deep");
        let hw = d.stack_high_water().expect("measured");
        assert!(hw.is_exact(), "{dump}");
        assert!(
            hw.bytes().abs_diff(truth) < page(),
            "high-water {} vs truth {truth}\n{dump}",
            hw.bytes()
        );
        // Well below the mark now: the mark is not the present depth.
        assert!(d.stack_used().unwrap() < truth / 4);
        let text = dump.to_string();
        assert!(text.contains("in use, deepest ever "), "{text}");
        deep.cancel();
        assert!(deep.join().is_err());
    });
}

#[test]
fn a_reused_stack_reports_only_its_new_fibers_use_and_dumps_do_not_raise_marks() {
    setup();
    spindle::run(|| {
        // Same size, same thread: the second fiber gets the first one's
        // stack back from the pool, with 100 KiB of its frames in it.
        let size = STACK + 4 * page();
        spindle::Builder::new()
            .stack_size(size)
            .spawn(|| black_box(recurse(100)))
            .unwrap()
            .join()
            .unwrap();
        let shallow = spindle::Builder::new()
            .name("shallow".into())
            .stack_size(size)
            .spawn(spindle::park)
            .unwrap();
        spindle::yield_now();
        let first = spindle::dump();
        let hw1 = fiber(&first, "shallow").stack_high_water().unwrap();
        assert!(hw1.is_exact() && hw1.bytes() < 16 * 1024, "{first}");
        // The dump's backtrace capture ran on that stack, below its
        // pointer (some KiB): the next dump must not count it. The fiber
        // stays suspended one frame deeper (the trace's own, under 256 B)
        // until it runs again.
        let second = spindle::dump();
        let hw2 = fiber(&second, "shallow").stack_high_water().unwrap();
        assert!(
            hw2.bytes() >= hw1.bytes() && hw2.bytes() - hw1.bytes() < 256,
            "{hw1:?} then {hw2:?}\n{second}"
        );
        let third = spindle::dump();
        assert_eq!(fiber(&third, "shallow").stack_high_water(), Some(hw2));
        shallow.cancel();
        assert!(shallow.join().is_err());
    });
}

#[test]
fn the_summary_groups_by_name_and_advises_a_smaller_stack() {
    setup();
    spindle::run(|| {
        let conns: Vec<_> = (0..5)
            .map(|_| {
                spindle::Builder::new()
                    .name("conn".into())
                    .spawn(spindle::park)
                    .unwrap()
            })
            .collect();
        spindle::yield_now();
        let dump = spindle::dump();
        let conn = dump
            .stack_summary()
            .into_iter()
            .find(|s| s.name() == "conn")
            .unwrap();
        assert_eq!(conn.fibers(), 5);
        assert_eq!(conn.stack_size(), spindle::stack::Stack::DEFAULT_SIZE);
        let size = conn
            .suggested_size()
            .expect("a parked fiber needs far less");
        assert!(
            size >= 2 * conn.deepest() && size.is_power_of_two(),
            "{conn}"
        );
        let text = dump.to_string();
        let line = text
            .lines()
            .find(|l| l.contains("fibers named \"conn\" (5) used at most "))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(" of 256.0 KiB; a "), "{line}");
        assert!(line.contains(" at 10,000 fibers"), "{line}");
        for c in conns {
            c.cancel();
            assert!(c.join().is_err());
        }
    });
}
