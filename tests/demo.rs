//! The tour (`cargo run --release`): runs the binary and checks that what it
//! prints contains each section's expected lines, in order.

use std::process::Command;
use std::sync::OnceLock;

/// The binary's standard output, after checking that it succeeded. The
/// tour takes a few seconds (the 10,000-task section sleeps for real), so it
/// runs once and every test reads the same output.
fn tour() -> &'static str {
    static OUTPUT: OnceLock<String> = OnceLock::new();
    OUTPUT.get_or_init(|| {
        let output = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .output()
            .expect("the tour binary runs");
        assert!(
            output.status.success(),
            "the tour failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("the tour prints UTF-8")
    })
}

/// Checks that `expected` appear in `output` as whole lines (ignoring
/// indentation), in this order, possibly with other lines between them.
fn assert_lines_in_order(output: &str, expected: &[&str]) {
    let mut lines = output.lines().map(str::trim);
    for want in expected {
        assert!(
            lines.any(|line| line == *want),
            "missing (or out of order): {want:?}\nin the tour's output:\n{output}"
        );
    }
}

#[test]
fn sections_appear_in_order() {
    assert_lines_in_order(
        tour(),
        &[
            "== Generator: Fibonacci ==",
            "== Delegation: yield from ==",
            "== Producer and consumer ==",
            "== Greenlets: explicit switches ==",
            "== Fibers: false multitasking ==",
            "== Fibers: the crawler ==",
            "== Fibers: cancellation ==",
            "== Fibers: done callbacks ==",
            "== Fibers: gevent's three workers ==",
            "== Channels: producer and consumer ==",
            "== Channels: select ==",
            "== Network: the image downloader ==",
            "== Network: echo server ==",
            "== Waits: OnceCell, Event, RwLock ==",
            "== Many cores: the tutorial's pool of 4 jobs ==",
            "== Processes and signals ==",
            "== Unix sockets and fiber-locals ==",
            "== Fibers: 10,000 tasks ==",
        ],
    );
}

#[test]
fn false_multitasking_takes_turns() {
    assert_lines_in_order(
        tour(),
        &[
            "== Fibers: false multitasking ==",
            "---1---",
            "---2---",
            "---1---",
            "---2---",
        ],
    );
}

#[test]
fn fibonacci() {
    assert_lines_in_order(
        tour(),
        &["== Generator: Fibonacci ==", "0 1 1 2 3 5 8 13 21 34"],
    );
}

#[test]
fn delegation() {
    assert_lines_in_order(tour(), &["== Delegation: yield from ==", "1 3 4 2"]);
}

#[test]
fn producer_consumer() {
    let mut expected = vec![String::from("== Producer and consumer ==")];
    for n in 1..=5 {
        expected.push(format!("[PRODUCER] Producing {n}..."));
        expected.push(format!("[CONSUMER] Consuming {n}..."));
        expected.push(String::from("[PRODUCER] Consumer return: 200 OK"));
    }
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let output = tour();
    assert_lines_in_order(output, &expected);
    // Nothing else in between: the fifteen lines follow one another.
    let section: Vec<&str> = output
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("[PRODUCER]"))
        .take(15)
        .collect();
    assert_eq!(section, expected[1..]);
}

#[test]
fn greenlet_order() {
    assert_lines_in_order(tour(), &["== Greenlets: explicit switches ==", "1 3 2 4 5"]);
}

#[test]
fn channels_carry_the_producer_consumer_dialogue() {
    let mut expected = vec![String::from("== Channels: producer and consumer ==")];
    for n in 1..=5 {
        expected.push(format!("[PRODUCER] Producing {n}..."));
        expected.push(format!("[CONSUMER] Consuming {n}..."));
        expected.push(String::from("[PRODUCER] Consumer return: 200 OK"));
    }
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_lines_in_order(tour(), &expected);
}

#[test]
fn the_image_downloader_reports_both_runs_and_the_ratio() {
    let output = tour();
    assert_lines_in_order(output, &["== Network: the image downloader =="]);
    let section: Vec<&str> = output
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "== Network: the image downloader ==")
        .collect();
    assert!(section
        .iter()
        .any(|l| l.starts_with("sequential: 10 images")));
    assert!(section
        .iter()
        .any(|l| l.starts_with("concurrent: 10 images")));
    let ratio = section
        .iter()
        .find_map(|l| l.strip_prefix("concurrent is ")?.strip_suffix("x faster"))
        .expect("the ratio line");
    let ratio: f64 = ratio.parse().expect("a number");
    // 10 answers of 100 ms each: in turn >= 1 s, at once about 100 ms.
    assert!(ratio > 3.0, "concurrent only {ratio}x faster");
}

#[test]
fn the_echo_server_answers_every_client() {
    let output = tour();
    let mut expected = vec!["== Network: echo server =="];
    let lines: Vec<String> = (1..=3)
        .flat_map(|c| (1..=2).map(move |l| format!("client {c} got back: client {c}, line {l}")))
        .collect();
    expected.extend(lines.iter().map(String::as_str));
    for c in 1..=3 {
        let mine: Vec<&str> = expected[1..]
            .iter()
            .copied()
            .filter(|l| l.starts_with(&format!("client {c} ")))
            .collect();
        let mut want = vec!["== Network: echo server =="];
        want.extend(mine);
        assert_lines_in_order(output, &want);
    }
    assert_lines_in_order(
        output,
        &[
            "== Network: echo server ==",
            "6 lines echoed, 3 connections, one thread",
        ],
    );
}

#[test]
fn the_ten_thousand_task_report_gives_both_runs_and_the_ratio() {
    let output = tour();
    let section: Vec<&str> = output
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "== Fibers: 10,000 tasks ==")
        .collect();
    let field = |prefix: &str| -> f64 {
        let line = section
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in {section:?}"));
        line.split_whitespace()
            .nth(1)
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no number in {line:?}"))
    };
    // "fibers:     wall 1.045 s, ..." and "OS threads: wall 1.572 s, ...":
    // every task slept a whole second, in both runs.
    assert!(field("fibers:") >= 1.0);
    assert!(field("OS threads:") >= 1.0);
    assert!(section
        .iter()
        .any(|l| l.starts_with("fibers vs OS threads: ") && l.contains("x the wall time")));
}

#[test]
fn ends_with_how_to_run_the_hook_example() {
    assert_lines_in_order(
        tour(),
        &[
            "== Next: gevent's monkey.patch_all ==",
            "cargo run --release --features hook --example monkey_patch",
        ],
    );
}

#[test]
fn the_pool_of_jobs_runs_on_two_workers() {
    let out = tour();
    let section = out
        .split("== Many cores: the tutorial's pool of 4 jobs ==")
        .nth(1)
        .expect("the section is there");
    for job in 0..4 {
        let line = section
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&format!("job {job}: 2500 tasks on worker ")))
            .unwrap_or_else(|| panic!("no line for job {job}:\n{section}"));
        let worker = line["job 0: 2500 tasks on worker ".len()..]
            .split(',')
            .next()
            .unwrap();
        assert!(worker == "0" || worker == "1", "{line}");
    }
    assert!(
        section
            .lines()
            .any(|l| l.trim().starts_with("10000 tasks, 2 workers (")),
        "{section}"
    );
}

#[test]
fn children_signals_unix_sockets_and_fiber_locals() {
    assert_lines_in_order(
        tour(),
        &[
            "== Processes and signals ==",
            "child 1 done",
            "child 2 done",
            "child 3 done",
            "child 4 done",
            "child 5 done",
            "5 children of 0.1 s each: at once",
            "received signal USR1 (SIGUSR1) in a parked fiber",
            "== Unix sockets and fiber-locals ==",
            "echoed \"one\"",
            "echoed \"two\"",
            "echoed \"three\"",
            "fiber-local counts: echo fiber 3, main fiber 0",
        ],
    );
}

#[test]
fn what_is_everyone_doing_names_each_fibers_wait() {
    assert_lines_in_order(
        tour(),
        &[
            "== Fibers: what is everyone doing? ==",
            "\"main\" [Running] in a closure, spawned at line 24",
            "\"napper\" [Sleeping] in nap, spawned at line 28",
            "\"mailbox\" [WaitingSync: spindle::sync::Receiver::recv] in wait_for_mail, spawned at line 33",
            "\"waiter\" [WaitingJoin: fiber] in a closure, spawned at line 37",
            "the waiter got Some(\"hello\")",
            "every fiber finished as if no dump had been taken",
            "\"far\" on worker 1 [Sleeping], in nap: true, with a timer: true",
            "\"far\" used under 16 KiB of its 256 KiB stack: true",
        ],
    );
}

#[test]
fn once_cell_event_and_a_write_preferring_rwlock() {
    assert_lines_in_order(
        tour(),
        &[
            "== Waits: OnceCell, Event, RwLock ==",
            "OnceCell: config loaded by fiber 1; 3 fibers saw it, loaded 1 time(s)",
            "Event: set once, 3 waiting fibers ran",
            "RwLock: reader 1 read 0, reader 2 read 0, writer wrote 1, reader 3 read 1",
        ],
    );
}
