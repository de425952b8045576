//! Shutdown leaks nothing: dropping out of `block_on` with fibers still
//! alive (asleep, waiting on fds, joining, never started) unwinds them all,
//! and the process's fd count, live stack count and stack mappings come back
//! to where they were.
//!
//! One test in its own binary, so no other test opens fds meanwhile.

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn live_stacks() -> usize {
    spindle::stack::StackPool::stats().live
}

/// Chunks (mappings) the stack allocator holds once this thread's pool has
/// given its stacks back: what the process keeps for stacks.
fn stack_chunks() -> usize {
    spindle::stack::StackPool::clear();
    spindle::stack::StackPool::stats().chunks
}

struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Spawns `n` fibers in each kind of wait and returns without joining them.
fn leave_fibers_behind(n: usize, dropped: Rc<Cell<usize>>) -> usize {
    let rt = spindle::Runtime::new().unwrap();
    rt.block_on(move || {
        let mut spawned = 0;
        for i in 0..n {
            let guard = Counted(dropped.clone());
            spindle::spawn(move || {
                let _g = guard;
                spindle::sleep(Duration::from_secs(3600 + i as u64));
            });
            let guard = Counted(dropped.clone());
            let (a, b) = UnixStream::pair().unwrap();
            spindle::spawn(move || {
                let _g = (guard, b);
                let _ = spindle::runtime::wait_readable(a.as_raw_fd(), None);
            });
            let guard = Counted(dropped.clone());
            let sleeper = spindle::spawn(|| spindle::sleep(Duration::from_secs(3600)));
            spindle::spawn(move || {
                let _g = guard;
                let _ = sleeper.join();
            });
            spawned += 3;
        }
        spindle::yield_now(); // let them all park
                              // And some that never start.
        for _ in 0..n {
            let guard = Counted(dropped.clone());
            spindle::spawn(move || drop(guard));
            spawned += 1;
        }
        assert_eq!(spindle::tasks().len(), 1 + spawned + n);
        // Not vacuous: the 4n started ones (and main) hold a stack now; the
        // n that never started hold none (a fiber takes its stack at its
        // first resume), and must be dropped without ever taking one.
        let live = live_stacks();
        assert!(live > 4 * n && live < 5 * n, "{live} stacks live");
        spawned
    })
}

#[test]
fn runtime_drop_with_live_fibers_frees_everything() {
    // Warm up once: thread-locals, pools and lazy statics settle.
    let dropped = Rc::new(Cell::new(0));
    leave_fibers_behind(50, dropped.clone());

    let fds = fd_count();
    let chunks = stack_chunks();
    let dropped = Rc::new(Cell::new(0));
    let guards = leave_fibers_behind(200, dropped.clone());
    assert_eq!(
        dropped.get(),
        guards,
        "some fibers' destructors did not run"
    );
    assert_eq!(fd_count(), fds, "fds leaked");
    assert_eq!(stack_chunks(), chunks, "stack memory kept");
}
