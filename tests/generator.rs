//! Generators: iteration, return values, `send`, delegation (`yield from`),
//! panics and dropping.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use spindle::generator::{Generator, YieldFrom};
use spindle::Yielder;

/// Counts its drops in a shared cell.
struct DropCounter(Rc<Cell<u32>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn fibonacci() -> Generator<u64> {
    Generator::new(|y| {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            y.suspend(a);
            (a, b) = (b, a + b);
        }
    })
}

#[test]
fn fibonacci_first_ten() {
    let first: Vec<u64> = fibonacci().take(10).collect();
    assert_eq!(first, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
}

#[test]
fn nothing_runs_before_the_first_next() {
    let ran = Rc::new(Cell::new(false));
    let flag = Rc::clone(&ran);
    let mut g = Generator::new(move |y| {
        flag.set(true);
        y.suspend(1);
    });
    assert!(!ran.get());
    assert_eq!(g.next(), Some(1));
    assert!(ran.get());
}

#[test]
fn delegation_order_is_1_3_4_2() {
    let mut outer = Generator::new(|y| {
        y.suspend(1);
        let inner = Generator::new(|y| {
            y.suspend(3);
            y.suspend(4);
            2
        });
        let from_inner = y.yield_from(inner);
        y.suspend(from_inner);
        "outer done"
    });
    assert_eq!(outer.by_ref().collect::<Vec<_>>(), [1, 3, 4, 2]);
    assert_eq!(outer.return_value(), Some(&"outer done"));
}

#[test]
fn delegation_nests() {
    fn count(from: u32, to: u32) -> Generator<u32, u32> {
        Generator::new(move |y| {
            for n in from..to {
                y.suspend(n);
            }
            to - from
        })
    }
    fn chain(depth: u32) -> Generator<u32, u32> {
        Generator::new(move |y| {
            let mut total = y.yield_from(count(depth * 10, depth * 10 + 2));
            if depth > 0 {
                total += y.yield_from(chain(depth - 1));
            }
            total
        })
    }
    let mut g = chain(3);
    assert_eq!(
        g.by_ref().collect::<Vec<_>>(),
        [30, 31, 20, 21, 10, 11, 0, 1]
    );
    assert_eq!(g.into_return_value(), Some(8));
}

#[test]
fn yield_from_a_finished_generator_returns_its_value_at_once() {
    let mut inner = Generator::new(|y| {
        y.suspend('a');
        'z'
    });
    assert_eq!(inner.next(), Some('a'));
    assert_eq!(inner.next(), None);
    let mut outer = Generator::new(move |y| y.yield_from(inner));
    assert_eq!(outer.next(), None);
    assert_eq!(outer.return_value(), Some(&'z'));
}

#[test]
fn yield_from_a_half_consumed_generator_goes_on_from_there() {
    let mut inner = Generator::new(|y| {
        for n in 0..4 {
            y.suspend(n);
        }
    });
    assert_eq!(inner.next(), Some(0));
    let outer = Generator::new(move |y| y.yield_from(inner));
    assert_eq!(outer.collect::<Vec<_>>(), [1, 2, 3]);
}

#[test]
fn return_value_after_the_last_item() {
    let mut g = Generator::new(|y| {
        y.suspend("a");
        y.suspend("b");
        String::from("the end")
    });
    assert_eq!(g.return_value(), None);
    assert_eq!(g.next(), Some("a"));
    assert_eq!(g.next(), Some("b"));
    assert_eq!(g.return_value(), None);
    assert!(!g.is_done());
    assert_eq!(g.next(), None);
    assert!(g.is_done());
    assert_eq!(g.return_value().map(String::as_str), Some("the end"));
    assert_eq!(g.into_return_value().as_deref(), Some("the end"));
}

#[test]
fn iteration_is_fused() {
    let mut g = Generator::new(|y| y.suspend(7));
    assert_eq!(g.next(), Some(7));
    for _ in 0..3 {
        assert_eq!(g.next(), None);
        assert!(g.is_done());
    }
    assert_eq!(g.return_value(), Some(&()));
}

#[test]
fn into_return_value_of_an_unfinished_generator_is_none() {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCounter(Rc::clone(&drops));
    let mut g = Generator::new(move |y| {
        let _guard = guard;
        y.suspend(1);
        5
    });
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.into_return_value(), None);
    assert_eq!(drops.get(), 1);
}

#[test]
fn send_delivers_values() {
    let mut running_max = Generator::with_input(|y, first: i32| {
        let mut max = first;
        loop {
            let n = y.suspend(max);
            if n == i32::MIN {
                return max;
            }
            max = max.max(n);
        }
    });
    assert_eq!(running_max.send(3), Some(3));
    assert_eq!(running_max.send(1), Some(3));
    assert_eq!(running_max.send(9), Some(9));
    assert_eq!(running_max.send(i32::MIN), None);
    assert_eq!(running_max.return_value(), Some(&9));
    // After the end, sent values are dropped and nothing runs.
    assert_eq!(running_max.send(100), None);
    assert_eq!(running_max.return_value(), Some(&9));
}

#[test]
fn delegate_forwards_every_sent_value() {
    // Echoes what it is sent, tagged, until it is sent "stop".
    fn echo(tag: &'static str) -> Generator<String, usize, &'static str> {
        Generator::with_input(move |y, first: &'static str| {
            let mut heard = first;
            let mut count = 0;
            while heard != "stop" {
                count += 1;
                heard = y.suspend(format!("{tag}:{heard}"));
            }
            count
        })
    }
    let mut outer = Generator::with_input(|y: &Yielder<&'static str, String>, first| {
        let a = y.delegate(echo("a"), first);
        let next = y.suspend(format!("a heard {a}"));
        let b = y.delegate(echo("b"), next);
        a + b
    });
    let mut out = Vec::new();
    for word in ["x", "y", "stop", "z", "stop"] {
        out.extend(outer.send(word));
    }
    assert_eq!(out, ["a:x", "a:y", "a heard 2", "b:z"]);
    assert_eq!(outer.return_value(), Some(&3));
}

#[test]
fn a_panic_leaves_through_next_and_ends_the_generator() {
    let mut g = Generator::new(|y| {
        y.suspend(1);
        let at = std::hint::black_box(2);
        panic!("boom at {at}");
    });
    assert_eq!(g.next(), Some(1));
    let payload = panic::catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert_eq!(payload.downcast_ref::<String>().unwrap(), "boom at 2");
    assert!(g.is_done());
    assert_eq!(g.next(), None);
    assert_eq!(g.return_value(), None::<&()>);
}

#[test]
fn a_panic_in_a_delegate_goes_through_the_outer_generator() {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCounter(Rc::clone(&drops));
    let mut outer = Generator::new(move |y| {
        let _guard = guard;
        y.suspend(0);
        y.yield_from(Generator::new(|y| {
            y.suspend(1);
            std::panic::panic_any(42u8);
        }))
    });
    assert_eq!(outer.next(), Some(0));
    assert_eq!(outer.next(), Some(1));
    let payload = panic::catch_unwind(AssertUnwindSafe(|| outer.next())).unwrap_err();
    assert_eq!(payload.downcast_ref::<u8>(), Some(&42));
    assert!(outer.is_done());
    assert_eq!(drops.get(), 1);
}

#[test]
fn delegating_to_a_generator_that_panicked_panics() {
    let mut inner: Generator<u8, u8> = Generator::new(|_| panic!("first"));
    assert!(panic::catch_unwind(AssertUnwindSafe(|| inner.next())).is_err());
    let mut outer = Generator::new(move |y| y.yield_from(inner));
    let payload = panic::catch_unwind(AssertUnwindSafe(|| outer.next())).unwrap_err();
    let message = payload.downcast_ref::<&str>().unwrap();
    assert!(message.contains("already ended by panicking"), "{message}");
}

#[test]
fn dropping_a_half_consumed_generator_runs_destructors_once() {
    let drops = Rc::new(Cell::new(0));
    let counter = Rc::clone(&drops);
    let mut g = Generator::new(move |y| {
        let _a = DropCounter(Rc::clone(&counter));
        for n in 0..10 {
            let _b = DropCounter(Rc::clone(&counter));
            y.suspend(n);
        }
    });
    assert_eq!(g.next(), Some(0));
    assert_eq!(g.next(), Some(1));
    assert_eq!(drops.get(), 1); // the first `_b`
    drop(g);
    assert_eq!(drops.get(), 3); // the second `_b`, then `_a`
}

#[test]
fn dropping_an_unstarted_generator_drops_its_closure() {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCounter(Rc::clone(&drops));
    let g = Generator::new(move |y| {
        let _guard = guard;
        y.suspend(());
    });
    drop(g);
    assert_eq!(drops.get(), 1);
}

#[test]
fn dropping_the_outer_generator_mid_delegation_unwinds_both_once() {
    let drops = Rc::new(Cell::new(0));
    let (outer_counter, inner_counter) = (Rc::clone(&drops), Rc::clone(&drops));
    let mut outer = Generator::new(move |y| {
        let _outer = DropCounter(outer_counter);
        y.yield_from(Generator::new(move |y| {
            let _inner = DropCounter(inner_counter);
            loop {
                y.suspend(1);
            }
        }))
    });
    assert_eq!(outer.next(), Some(1));
    assert_eq!(outer.next(), Some(1));
    assert_eq!(drops.get(), 0);
    drop(outer);
    assert_eq!(drops.get(), 2);
}

#[test]
fn from_a_built_coroutine() {
    use spindle::coroutine::{Builder, Coroutine};
    let co: Coroutine<(), u8, &str> = Builder::new()
        .name("digits")
        .stack_size(32 * 1024)
        .build(|y: &Yielder<(), u8>, ()| {
            for d in 0..3 {
                y.suspend(d);
            }
            "done"
        })
        .unwrap();
    let mut g = Generator::from(co);
    assert_eq!(g.by_ref().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(g.return_value(), Some(&"done"));
}

/// Python's classic:
///
/// ```python
/// def consumer():
///     r = ''
///     while True:
///         n = yield r
///         if not n:
///             return
///         print('[CONSUMER] Consuming %s...' % n)
///         r = '200 OK'
///
/// def produce(c):
///     c.send(None)
///     for n in range(1, 6):
///         print('[PRODUCER] Producing %s...' % n)
///         r = c.send(n)
///         print('[PRODUCER] Consumer return: %s' % r)
///     c.close()
/// ```
#[test]
fn producer_consumer_trace() {
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let consumer_log = Rc::clone(&log);
    let mut consumer = Generator::with_input(move |y, _start: Option<u32>| {
        let mut r = String::new();
        loop {
            let Some(n) = y.suspend(r) else { return };
            consumer_log
                .borrow_mut()
                .push(format!("[CONSUMER] Consuming {n}..."));
            r = String::from("200 OK");
        }
    });

    assert_eq!(consumer.send(None).as_deref(), Some(""));
    for n in 1..=5 {
        log.borrow_mut()
            .push(format!("[PRODUCER] Producing {n}..."));
        let r = consumer.send(Some(n)).unwrap();
        log.borrow_mut()
            .push(format!("[PRODUCER] Consumer return: {r}"));
    }
    assert_eq!(consumer.send(None), None);
    assert!(consumer.is_done());

    let mut expected = Vec::new();
    for n in 1..=5 {
        expected.push(format!("[PRODUCER] Producing {n}..."));
        expected.push(format!("[CONSUMER] Consuming {n}..."));
        expected.push(String::from("[PRODUCER] Consumer return: 200 OK"));
    }
    assert_eq!(*log.borrow(), expected);
}

#[test]
fn many_generators_in_turn() {
    // Each generator gets a pooled stack back when it is dropped.
    let total: u64 = (0..2_000u64)
        .map(|i| Generator::new(move |y| y.suspend(i)).sum::<u64>())
        .sum();
    assert_eq!(total, 1_999 * 2_000 / 2);
}
