//! The context switch seen through the public API: stack alignment, values
//! in both directions, nesting, many fibers, backtraces.

use spindle::{Coroutine, CoroutineResult, Yielder};

/// The stack pointer at this point, as an inline asm block sees it. A block
/// without `nostack` is placed where a call could be made, so the compiler
/// assumes (and never re-establishes) the ABI's 16-byte alignment there: a
/// switch that broke the alignment shows up as a non-zero remainder.
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: only copies the stack pointer into a register.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp)
    };
    // SAFETY: only copies the stack pointer into a register.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp)
    };
    sp
}

#[inline(never)]
fn aligned_here() -> bool {
    stack_pointer() % 16 == 0
}

#[test]
fn stack_is_aligned_at_entry_and_after_every_resume() {
    let mut co = Coroutine::new(|y: &Yielder<(), bool>, ()| {
        y.suspend(aligned_here() && stack_pointer() % 16 == 0);
        for _ in 0..100 {
            y.suspend(aligned_here() && stack_pointer() % 16 == 0);
        }
    });
    for _ in 0..101 {
        assert_eq!(co.resume(()), CoroutineResult::Yield(true));
        assert!(aligned_here(), "resumer misaligned after a switch");
    }
    assert_eq!(co.resume(()), CoroutineResult::Return(()));
}

#[test]
fn values_travel_both_ways_in_order() {
    let mut co = Coroutine::new(|y: &Yielder<String, usize>, first: String| {
        let mut seen = vec![first];
        for i in 0..5 {
            seen.push(y.suspend(i));
        }
        seen.join(",")
    });
    assert_eq!(co.resume("a".into()), CoroutineResult::Yield(0));
    for (i, s) in ["b", "c", "d", "e"].iter().enumerate() {
        assert_eq!(co.resume(s.to_string()), CoroutineResult::Yield(i + 1));
    }
    assert_eq!(
        co.resume("f".into()),
        CoroutineResult::Return("a,b,c,d,e,f".to_string())
    );
    assert!(co.done());
}

#[test]
#[should_panic(expected = "resumed a coroutine that has already finished")]
fn resuming_a_finished_coroutine_panics() {
    let mut co = Coroutine::new(|_: &Yielder<(), ()>, ()| 1);
    assert_eq!(co.resume(()), CoroutineResult::Return(1));
    co.resume(());
}

#[test]
fn nested_coroutines_switch_back_to_the_right_parent() {
    let mut outer = Coroutine::new(|y: &Yielder<(), u32>, ()| {
        let mut inner = Coroutine::new(|iy: &Yielder<(), u32>, ()| {
            iy.suspend(10);
            iy.suspend(20);
            30
        });
        y.suspend(1);
        while let CoroutineResult::Yield(v) = inner.resume(()) {
            y.suspend(v + 1);
        }
        2
    });
    let mut got = vec![];
    while let CoroutineResult::Yield(v) = outer.resume(()) {
        got.push(v);
    }
    assert_eq!(got, [1, 11, 21]);
}

#[test]
fn suspending_through_an_outer_yielder_suspends_the_chain() {
    // The inner fiber suspends with the *outer* coroutine's yielder (the
    // shape a scheduler uses when a generator's body parks its task): both
    // fibers stop together and resume together.
    use std::cell::Cell;
    use std::rc::Rc;
    let outer_yielder: Rc<Cell<*const Yielder<(), &'static str>>> =
        Rc::new(Cell::new(std::ptr::null()));
    let slot = outer_yielder.clone();
    let mut outer = Coroutine::new(move |y: &Yielder<(), &'static str>, ()| {
        slot.set(y as *const _);
        let slot2 = slot.clone();
        let mut inner = Coroutine::new(move |_: &Yielder<(), ()>, ()| {
            // SAFETY (test): the outer fiber is suspended inside
            // inner.resume() below and outlives this call.
            let outer_y = unsafe { &*slot2.get() };
            outer_y.suspend("from inner");
            "inner done"
        });
        match inner.resume(()) {
            CoroutineResult::Return(s) => s,
            CoroutineResult::Yield(()) => "unexpected",
        }
    });
    assert_eq!(outer.resume(()), CoroutineResult::Yield("from inner"));
    assert_eq!(outer.resume(()), CoroutineResult::Return("inner done"));
    drop(outer_yielder);
}

#[test]
fn many_coroutines_interleave() {
    let mut cos: Vec<Coroutine<u64, u64, u64>> = (0..100)
        .map(|k| {
            Coroutine::new(move |y: &Yielder<u64, u64>, mut acc: u64| {
                for _ in 0..50 {
                    acc = y.suspend(acc + k);
                }
                acc
            })
        })
        .collect();
    let mut values = vec![0u64; 100];
    for _round in 0..50 {
        for (k, co) in cos.iter_mut().enumerate() {
            values[k] = co.resume(values[k]).as_yield().unwrap();
        }
    }
    for (k, co) in cos.iter_mut().enumerate() {
        assert_eq!(co.resume(values[k]), CoroutineResult::Return(50 * k as u64));
    }
}

#[inline(never)]
fn capture_in_a_named_frame() -> String {
    std::backtrace::Backtrace::force_capture().to_string()
}

#[test]
fn backtrace_inside_a_fiber_walks_into_the_resumer() {
    let mut co = Coroutine::new(|y: &Yielder<(), String>, ()| {
        y.suspend(capture_in_a_named_frame());
    });
    let trace = co.resume(()).as_yield().unwrap();
    let pos = |needle: &str| {
        trace
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not in:\n{trace}"))
    };
    // The fiber's own frames, then the trampoline, then the resumer's.
    let fiber_fn = pos("capture_in_a_named_frame");
    let trampoline = pos("spindle_fiber_start");
    assert!(fiber_fn < trampoline, "{trace}");
    // Past the trampoline: the resumer's own frames (Coroutine::resume,
    // then this test function itself).
    let beyond = &trace[trampoline..];
    // An inlined frame is named generically (`Coroutine<I,Y,R>>::resume`),
    // an outlined one (as in ASan builds) with its type arguments.
    assert!(
        beyond
            .lines()
            .any(|l| l.contains("Coroutine<") && l.contains(">::resume")),
        "{trace}"
    );
    assert!(
        beyond.contains("switch::backtrace_inside_a_fiber_walks_into_the_resumer\n"),
        "{trace}"
    );
    drop(co);
}
