use std::time::Instant;
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(1000);
    let rt = spindle::Runtime::new().unwrap();
    for _ in 0..5 {
        let per = rt.block_on(move || {
            let hs: Vec<_> = (0..n)
                .map(|_| {
                    spindle::spawn(|| {
                        for _ in 0..1000 {
                            spindle::yield_now();
                        }
                    })
                })
                .collect();
            let t = Instant::now();
            for h in hs {
                h.join().unwrap();
            }
            t.elapsed().as_nanos() as f64 / (n as f64 * 1000.0)
        });
        println!("{n} fibers: {per:.1} ns/yield");
    }
}
