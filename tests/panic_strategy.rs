//! What depends on the panic strategy, checked under both: `cargo test`
//! runs this file with `panic = "unwind"`, and CI's panic=abort job builds it
//! with `RUSTFLAGS="-C panic=abort"` (see `.ci/run`).
//!
//! It has no libtest harness (`harness = false` in Cargo.toml): libtest
//! refuses to build under `-C panic=abort` on stable, and a plain `main`
//! is enough. Each case prints its name; the first failed assertion ends
//! the process (an abort under panic=abort), which fails the run.
//!
//! Under panic=abort nothing can unwind, so:
//! - dropping a *suspended* coroutine leaks its stack: its destructors never
//!   run and the stack is never reused (see `spindle::coroutine`, "Panics
//!   and unwinding");
//! - everything that does not unwind works as under panic=unwind: coroutines
//!   that finish, generators, greenlets, the runtime with sleeps, channels
//!   and joins.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use spindle::coroutine::{Builder, Coroutine, CoroutineResult, Yielder};
use spindle::stack::{Stack, StackPool};
use spindle::Generator;

/// Sets its flag when dropped.
struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A coroutine that finishes is the same under both strategies: its
/// destructors run and its stack goes back to the pool.
fn finished_coroutine_frees_everything() {
    let dropped = Rc::new(Cell::new(false));
    let live = StackPool::stats().live;
    let flag = SetOnDrop(dropped.clone());
    let mut co = Coroutine::new(move |y: &Yielder<u32, u32>, a: u32| {
        let _flag = flag;
        let b = y.suspend(a + 1);
        a * b
    });
    assert_eq!(co.resume(3), CoroutineResult::Yield(4));
    assert_eq!(co.resume(5), CoroutineResult::Return(15));
    assert!(
        dropped.get(),
        "the closure's captures were dropped at return"
    );
    drop(co);
    assert_eq!(StackPool::stats().live, live, "the stack was given back");
}

/// Dropping a suspended coroutine: unwound under panic=unwind (destructors
/// run, the stack is reused); leaked under panic=abort (no destructor runs,
/// the stack stays out of the pool, so nothing else ever runs on it while
/// the suspended frames that may point into it still exist).
fn dropping_a_suspended_coroutine() {
    let dropped = Rc::new(Cell::new(false));
    let stack = Stack::new(64 * 1024).expect("stack");
    let base = stack.base();
    let live = StackPool::stats().live;
    let flag = SetOnDrop(dropped.clone());
    let mut co: Coroutine<(), (), ()> = Builder::new()
        .stack(stack)
        .build(move |y: &Yielder<(), ()>, ()| {
            let _flag = flag;
            y.suspend(());
            unreachable!("never resumed again");
        })
        .expect("coroutine");
    assert_eq!(co.resume(()), CoroutineResult::Yield(()));
    drop(co);
    let next = Stack::new(64 * 1024).expect("stack");
    if cfg!(panic = "unwind") {
        assert!(dropped.get(), "the forced unwind ran the destructor");
        assert_eq!(StackPool::stats().live, live, "the stack went back");
        assert_eq!(
            next.base(),
            base,
            "the pool handed the same stack out again"
        );
    } else {
        assert!(!dropped.get(), "nothing unwinds under panic=abort");
        assert_eq!(StackPool::stats().live, live + 1, "the stack is leaked");
        assert_ne!(
            next.base(),
            base,
            "a leaked stack is never handed out again"
        );
    }
}

/// Generators and greenlets that run to completion.
fn generators_and_greenlets() {
    let fib = Generator::new(|y| {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..10 {
            y.suspend(a);
            (a, b) = (b, a + b);
        }
    });
    assert_eq!(fib.collect::<Vec<_>>(), [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
    let g = spindle::Greenlet::new(|v: u32| v * 10);
    assert_eq!(g.switch(7), 70);
}

/// The runtime, as long as no fiber has to be cancelled or unwound.
fn runtime_without_cancellation() {
    let order = spindle::run(|| {
        let (tx, rx) = spindle::sync::channel::<u32>();
        let producer = spindle::spawn(move || {
            for i in 0..3 {
                spindle::sleep(Duration::from_millis(1));
                tx.send(i).expect("send");
            }
        });
        let got: Vec<u32> = rx.iter().collect();
        producer.join().expect("join");
        got
    });
    assert_eq!(order, [0, 1, 2]);
}

/// The environment variable that makes this binary run one case's child
/// body instead of the cases.
const CHILD: &str = "SPINDLE_PANIC_STRATEGY_CHILD";

/// The child body: cancels a fiber parked in `sleep` and prints how its
/// join ended.
fn cancel_a_parked_fiber_child() {
    let outcome = spindle::run(|| {
        let sleeper = spindle::spawn(|| spindle::sleep(Duration::from_secs(60)));
        spindle::yield_now(); // let it park
        sleeper.cancel();
        sleeper.join()
    });
    println!("join: {outcome:?}");
}

/// Cancellation is delivered as an unwind at the fiber's suspension point:
/// under panic=unwind the joiner sees `Cancelled`; under panic=abort the
/// process aborts, with a message naming the cause (checked in a child).
fn cancelling_a_parked_fiber() {
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new(std::env::current_exe().expect("current_exe"))
        .env(CHILD, "cancel")
        .output()
        .expect("spawn child");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let text = format!("{:?}\n{stdout}{stderr}", out.status);
    if cfg!(panic = "unwind") {
        assert!(out.status.success(), "{text}");
        assert!(stdout.contains("join: Err(Cancelled)"), "{text}");
    } else {
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{text}");
        assert!(stderr.contains("panic = \"abort\""), "{text}");
    }
}

fn main() {
    if std::env::var(CHILD).is_ok_and(|c| c == "cancel") {
        cancel_a_parked_fiber_child();
        return;
    }
    let strategy = if cfg!(panic = "unwind") {
        "unwind"
    } else {
        "abort"
    };
    let cases: [(&str, fn()); 5] = [
        (
            "finished_coroutine_frees_everything",
            finished_coroutine_frees_everything,
        ),
        (
            "dropping_a_suspended_coroutine",
            dropping_a_suspended_coroutine,
        ),
        ("generators_and_greenlets", generators_and_greenlets),
        ("runtime_without_cancellation", runtime_without_cancellation),
        ("cancelling_a_parked_fiber", cancelling_a_parked_fiber),
    ];
    for (name, case) in cases {
        case();
        println!("panic={strategy}: {name} ... ok");
    }
}
