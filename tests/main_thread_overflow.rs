//! The crash matrix's case that libtest cannot host (it runs each test on a
//! thread of its own): the process's *main* thread overflows its stack
//! after a fiber has run on it, so spindle's overflow handler is installed
//! and the thread has spindle's alternate signal stack. The report must
//! still be Rust's own ("thread 'main' has overflowed its stack"), not a
//! fiber's. A plain program (`harness = false` in Cargo.toml): it re-runs
//! itself as a child with [`CASE`] set and checks the child's signal and
//! stderr.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use spindle::coroutine::{Coroutine, Yielder};

/// Environment variable that makes this process the crashing child.
const CASE: &str = "SPINDLE_MAIN_THREAD_OVERFLOW_CHILD";

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(frame[depth as usize % 32])
}

fn main() {
    if std::env::var_os(CASE).is_some() {
        let mut co = Coroutine::new(|_y: &Yielder<(), ()>, ()| ());
        co.resume(());
        black_box(recurse(0));
        eprintln!("the recursion returned");
        return;
    }
    print!("test main_thread_overflow_keeps_rusts_report ... ");
    let out = Command::new(std::env::current_exe().expect("current_exe"))
        .env(CASE, "1")
        .output()
        .expect("spawn child");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{:?}\n{err}",
        out.status
    );
    assert!(err.contains("thread 'main'"), "{err}");
    assert!(err.contains("has overflowed its stack"), "{err}");
    assert!(!err.contains("fiber '"), "{err}");
    println!("ok");
}
