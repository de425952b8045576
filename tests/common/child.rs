//! Re-running one test of this test binary in a child process, for tests
//! that must crash, or must change process-wide state (a signal
//! disposition, a resource limit) that the other tests, running in threads
//! of the same process, must not see.
//!
//! The child gets the whole environment (qemu-user's variables included,
//! so it runs under emulation too) plus `var=case`, which tells it to run
//! the test's child body instead of spawning another child.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Re-runs test `name` of this binary (exactly that one, output not
/// captured) in a child with `var=case`.
pub fn run_child(var: &str, name: &str, case: &str) -> Output {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(var, case)
        .output()
        .expect("spawn child")
}

/// Whether this process is a child running `case` (`var=case`).
pub fn is_child(var: &str, case: &str) -> bool {
    std::env::var(var).is_ok_and(|c| c == case)
}

/// A child's exit status, stdout and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
