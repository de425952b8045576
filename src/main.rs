//! The spindle tour: `cargo run --release` prints a short section for each
//! idea the library shows, in the order a student meets them.
//!
//! Each section is a `pub fn` that does its work and returns the lines it
//! wants printed; [`SECTIONS`] lists them with a title and one line of
//! explanation, and `main` prints them. `tests/demo.rs` runs this binary
//! and checks its output, so what is printed is what is tested.
//!
//! To add a section: write `pub fn your_section() -> Vec<String>` and
//! append a [`Section`] to [`SECTIONS`].

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use spindle::{Generator, Greenlet, YieldFrom};

// The runtime's sections (fibers as tasks) live beside the examples that
// also run them one by one (`cargo run --release --example runtime_tour`).
#[path = "../examples/runtime_demos/mod.rs"]
mod runtime_demos;
// The I/O sections (channels, sockets), likewise.
#[path = "../examples/net_demos/mod.rs"]
mod net_demos;
// OnceCell, Event and RwLock.
#[path = "../examples/sync_demos/mod.rs"]
mod sync_demos;
// Many cores, child processes, signals, Unix sockets and fiber-locals.
#[path = "../examples/os_demos/mod.rs"]
mod os_demos;

/// One part of the tour.
struct Section {
    /// The heading.
    title: &'static str,
    /// One line saying what the section shows.
    about: &'static str,
    /// Does the work and returns the lines to print.
    run: fn() -> Vec<String>,
}

/// The tour, in order.
const SECTIONS: &[Section] = &[
    Section {
        title: "Generator: Fibonacci",
        about: "A coroutine that yields values is an iterator; here are its first ten.",
        run: fibonacci,
    },
    Section {
        title: "Delegation: yield from",
        about: "Outer yields 1, inner yields 3 and 4 and returns 2, outer yields that 2.",
        run: delegation,
    },
    Section {
        title: "Producer and consumer",
        about: "The producer sends each item into a consumer generator; it yields a reply.",
        run: producer_consumer,
    },
    Section {
        title: "Greenlets: explicit switches",
        about: "a: 1, to b; b: 3, to a; a: 2, to b; b: 4, ends; back in the root: 5.",
        run: greenlet_order,
    },
];

fn main() {
    let core = SECTIONS.iter().map(|s| (s.title, s.about, s.run));
    let runtime = runtime_demos::SECTIONS
        .iter()
        .copied()
        .chain(std::iter::once(runtime_demos::DUMP));
    let io = net_demos::SECTIONS.iter().copied();
    let waits = sync_demos::SECTIONS.iter().copied();
    let os = os_demos::SECTIONS.iter().copied();
    let benchmark = std::iter::once(runtime_demos::BENCHMARK);
    let tour = core
        .chain(runtime)
        .chain(io)
        .chain(waits)
        .chain(os)
        .chain(benchmark);
    for (i, (title, about, run)) in tour.enumerate() {
        if i > 0 {
            println!();
        }
        println!("== {title} ==");
        println!("{about}");
        for line in run() {
            println!("  {line}");
        }
    }
    println!();
    println!("== Next: gevent's monkey.patch_all ==");
    println!("With the cargo feature `hook`, std::thread::sleep and std::net park the fiber, not the thread:");
    println!("  cargo run --release --features hook --example monkey_patch");
}

/// The first ten Fibonacci numbers, from an endless generator.
pub fn fibonacci() -> Vec<String> {
    let numbers = Generator::new(|y| {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            y.suspend(a);
            (a, b) = (b, a + b);
        }
    });
    vec![join(numbers.take(10))]
}

/// Python's `yield from`: the items come out in the order 1 3 4 2.
pub fn delegation() -> Vec<String> {
    let outer = Generator::new(|y| {
        y.suspend(1);
        let inner = Generator::new(|y| {
            y.suspend(3);
            y.suspend(4);
            2
        });
        let returned = y.yield_from(inner);
        y.suspend(returned);
    });
    vec![join(outer)]
}

/// Python's classic producer and consumer, with `send`.
pub fn producer_consumer() -> Vec<String> {
    let lines = Rc::new(RefCell::new(Vec::new()));
    let consumer_lines = Rc::clone(&lines);
    // `n = yield r`: the consumer is sent `Some(n)`, or `None` to stop.
    let mut consumer = Generator::with_input(move |y, _start: Option<u32>| {
        let mut reply = String::new();
        while let Some(n) = y.suspend(reply) {
            let line = format!("[CONSUMER] Consuming {n}...");
            consumer_lines.borrow_mut().push(line);
            reply = String::from("200 OK");
        }
    });
    consumer.send(None); // start it: it runs to its first yield
    for n in 1..=5 {
        lines
            .borrow_mut()
            .push(format!("[PRODUCER] Producing {n}..."));
        let reply = consumer.send(Some(n)).unwrap_or_default();
        lines
            .borrow_mut()
            .push(format!("[PRODUCER] Consumer return: {reply}"));
    }
    consumer.send(None); // close it
    let lines = lines.borrow().clone();
    lines
}

/// Two greenlets switching to each other: 1 3 2 4 5.
pub fn greenlet_order() -> Vec<String> {
    let printed = Rc::new(RefCell::new(Vec::new()));
    // Each greenlet needs the other's handle, which does not exist yet when
    // it is created: a shared slot is filled in afterwards.
    let a_slot: Rc<OnceCell<Greenlet<()>>> = Rc::default();
    let b_slot: Rc<OnceCell<Greenlet<()>>> = Rc::default();

    let (out, b) = (Rc::clone(&printed), Rc::clone(&b_slot));
    let a = Greenlet::new(move |()| {
        out.borrow_mut().push(1);
        b.get().unwrap().switch(());
        out.borrow_mut().push(2);
        b.get().unwrap().switch(());
    });
    let (out, a_of_b) = (Rc::clone(&printed), Rc::clone(&a_slot));
    let b = Greenlet::new(move |()| {
        out.borrow_mut().push(3);
        a_of_b.get().unwrap().switch(());
        out.borrow_mut().push(4);
    });
    a_slot.set(a.clone()).ok();
    b_slot.set(b).ok();

    a.switch(());
    printed.borrow_mut().push(5);
    let line = join(printed.borrow().iter());
    vec![line]
}

/// The items, separated by spaces.
fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    let words: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    words.join(" ")
}
