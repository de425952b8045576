//! The runtime demos of the tour, their output and its order checked.

#[path = "../examples/runtime_demos/mod.rs"]
mod runtime_demos;

use std::time::Duration;

use runtime_demos::Log;

#[test]
fn false_multitasking_alternates() {
    let log = Log::quiet();
    runtime_demos::false_multitasking(&log, 3);
    assert_eq!(
        log.lines(),
        ["---1---", "---2---", "---1---", "---2---", "---1---", "---2---"]
    );
}

#[test]
fn crawler_sequential_takes_the_sum_and_concurrent_the_longest() {
    let unit = Duration::from_millis(20);
    let log = Log::quiet();
    let t = runtime_demos::crawler(&log, unit);
    assert!(t.sequential >= unit * 10, "{t:?}");
    assert!(t.concurrent >= unit * 4, "{t:?}");
    // The pages overlap: concurrent cannot have taken the sum of them.
    assert!(t.concurrent < t.sequential, "{t:?}");
    let lines = log.lines();
    let fetched: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("fetched "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    // Sequential in list order, concurrent in order of duration.
    assert_eq!(
        fetched,
        ["page-a", "page-b", "page-c", "page-d", "page-b", "page-d", "page-a", "page-c"]
    );
}

#[test]
fn cancel_example_shows_a_value_a_panic_and_a_cancellation() {
    let log = Log::quiet();
    let results = runtime_demos::cancel_three_workers(&log, Duration::from_millis(5));
    assert_eq!(results[0].as_ref().ok(), Some(&42));
    assert!(results[1].as_ref().unwrap_err().is_panic());
    assert!(results[2].as_ref().unwrap_err().is_cancelled());
    let lines = log.lines();
    let pos = |s: &str| {
        lines
            .iter()
            .position(|l| l.contains(s))
            .unwrap_or_else(|| panic!("{s:?} missing from {lines:?}"))
    };
    assert!(pos("'cancelled': sleeping") < pos("main: cancelling"));
    assert!(pos("main: cancelling") < pos("cleaning up as it unwinds"));
    assert!(pos("cleaning up") < pos("result of 'returns': Ok(42)"));
    assert!(lines.iter().all(|l| !l.contains("never printed")));
    assert!(lines
        .contains(&"result of 'fails': Err(fiber panicked: worker 'fails' gave up)".to_string()));
    assert!(lines.contains(&"result of 'cancelled': Err(fiber was cancelled)".to_string()));
}

#[test]
fn gevent_workers_interleave_and_overlap() {
    let unit = Duration::from_millis(20);
    let log = Log::quiet();
    let took = runtime_demos::gevent_three_workers(&log, unit);
    let order: Vec<String> = log
        .lines()
        .iter()
        .map(|l| {
            l.rsplit_once(" at ")
                .map_or(l.as_str(), |(head, _)| head)
                .to_string()
        })
        .collect();
    assert_eq!(
        order,
        [
            "gr1: started polling",
            "gr2: started polling",
            "gr3: doing some work while the others poll,",
            "gr3: done",
            "gr1: ended polling",
            "gr2: ended polling",
        ]
    );
    assert!(took >= unit * 2);
    assert!(took < unit * 5, "the waits did not overlap: {took:?}");
}

#[test]
fn ten_thousand_fibers_sleep_together() {
    let dur = Duration::from_millis(100);
    let r = runtime_demos::fibers_sleep(10_000, dur, spindle::Stack::DEFAULT_SIZE);
    assert!(r.wall >= dur);
    // Each fiber is resumed twice: to start (and fall asleep), and to wake.
    // The main fiber joins them in spawn order, and runs right after each
    // one it waits for ends (a hand-off: the runtime docs, "Scheduling
    // order"), then waits for the next, which has not run yet: once per
    // sleeper. 30,003 resumes measured; the few extra are the main fiber's
    // start and its last steps.
    assert!((30_000..30_100).contains(&r.resumes), "{}", r.resumes);
    let t = runtime_demos::threads_sleep(50, Duration::from_millis(20));
    assert!(t.wall >= Duration::from_millis(20));
}

#[test]
fn tour_sections_are_ready_for_the_tour() {
    let titles: Vec<&str> = runtime_demos::SECTIONS.iter().map(|s| s.0).collect();
    assert_eq!(titles.len(), 5, "{titles:?}");
    assert_eq!(runtime_demos::BENCHMARK.0, "Fibers: 10,000 tasks");
    let first = (runtime_demos::SECTIONS[0].2)();
    assert_eq!(
        first,
        ["---1---", "---2---", "---1---", "---2---", "---1---", "---2---"]
    );
}

#[test]
fn done_callbacks_follow_each_task_and_the_group() {
    let log = Log::quiet();
    runtime_demos::done_callbacks(&log, Duration::from_millis(5));
    let lines = log.lines();
    let mut want: Vec<String> = (0..5)
        .map(|i| format!("This is a task example, current task_id: task-{i}"))
        .collect();
    for i in 0..5 {
        want.push(format!("<Task finished name='task-{i}'"));
        want.push(format!("Task-id task-{i} Mission accomplished"));
    }
    want.push("suspend 1 units".into());
    want.push("suspend 3 units".into());
    want.push(r#"["Suspended 1 units", "Suspended 3 units"]"#.into());
    want.push("Multiple Task Callback after task completion".into());
    assert_eq!(lines.len(), want.len(), "{lines:#?}");
    for (line, want) in lines.iter().zip(&want) {
        assert!(
            line.starts_with(want.as_str()),
            "{line:?} should start with {want:?}"
        );
    }
}
