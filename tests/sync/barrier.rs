//! `Barrier`: one leader per generation, and reuse across generations.

use super::*;

/// Four fibers meet at one barrier six times, arriving in a different
/// order each generation: nobody leaves a generation before all four
/// have arrived, exactly one of them is the leader each time, and the
/// barrier needs no reset between generations.
#[test]
fn one_leader_per_generation_and_reusable() {
    const N: usize = 4;
    const GENERATIONS: usize = 6;
    spindle::run(|| {
        let barrier = Rc::new(Barrier::new(N));
        let arrived = Rc::new(RefCell::new(vec![0usize; GENERATIONS]));
        let leaders = Rc::new(RefCell::new(vec![Vec::new(); GENERATIONS]));
        let early = Rc::new(Cell::new(false));
        let fibers: Vec<_> = (0..N)
            .map(|i| {
                let (b, arrived, leaders, early) = (
                    barrier.clone(),
                    arrived.clone(),
                    leaders.clone(),
                    early.clone(),
                );
                spindle::spawn(move || {
                    for g in 0..GENERATIONS {
                        for _ in 0..(i * 3 + g) % N {
                            spindle::yield_now();
                        }
                        arrived.borrow_mut()[g] += 1;
                        let r = b.wait();
                        if arrived.borrow()[g] != N {
                            early.set(true);
                        }
                        if r.is_leader() {
                            leaders.borrow_mut()[g].push(i);
                        }
                    }
                })
            })
            .collect();
        for r in spindle::join_all(fibers) {
            r.unwrap();
        }
        assert!(!early.get(), "a fiber left before everyone arrived");
        for (g, ls) in leaders.borrow().iter().enumerate() {
            assert_eq!(ls.len(), 1, "generation {g} leaders: {ls:?}");
        }
    });
}
