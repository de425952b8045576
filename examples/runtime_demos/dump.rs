//! "What is everyone doing?": a fiber dump of a small program, Go-style.

use std::time::Duration;

use super::Log;

#[inline(never)]
fn nap() {
    spindle::sleep(Duration::from_millis(200));
    std::hint::black_box(());
}

#[inline(never)]
fn wait_for_mail(rx: spindle::sync::Receiver<&'static str>) -> Option<&'static str> {
    let got = rx.recv().ok();
    std::hint::black_box(got)
}

/// Spawns a sleeper, a receiver and a joiner, lets them settle, takes a
/// dump and logs, for each fiber, its name, state, what it waits for, the
/// innermost frame of this demo it is in, and where it was spawned. Then
/// lets them all finish.
pub fn what_is_everyone_doing(log: &Log) {
    let lines = spindle::run(|| {
        let mut out = Vec::new();
        let napper = spindle::Builder::new()
            .name("napper".into())
            .spawn(nap)
            .unwrap();
        let (tx, rx) = spindle::sync::channel();
        let mailbox = spindle::Builder::new()
            .name("mailbox".into())
            .spawn(move || wait_for_mail(rx))
            .unwrap();
        let waiter = spindle::Builder::new()
            .name("waiter".into())
            .spawn(move || mailbox.join().unwrap())
            .unwrap();
        spindle::yield_now();
        let dump = spindle::dump();
        for f in dump.fibers() {
            let name = f.name().unwrap_or("?");
            let mut line = format!("{name:?} [{:?}", f.state());
            if let Some(w) = f.waiting_for() {
                // Ids vary from run to run; the kind of object does not.
                let kind = w.split(' ').next().unwrap_or(w);
                line += &format!(": {kind}");
            }
            line += "]";
            let ours = f
                .backtrace()
                .iter()
                .find(|fr| fr.function().contains("runtime_demos::dump::"));
            if let Some(fr) = ours {
                let short = fr.function().rsplit("::").next().unwrap_or("");
                // Closures print as `{{closure}}` or, with the v0 symbol
                // mangling (sanitizer builds), `{closure#0}`.
                let short = if short.starts_with('{') {
                    "a closure"
                } else {
                    short
                };
                line += &format!(" in {short}");
            }
            line += &format!(", spawned at line {}", f.spawned_at().line());
            out.push(line);
        }
        tx.send("hello").unwrap();
        out.push(format!("the waiter got {:?}", waiter.join().unwrap()));
        napper.join().unwrap();
        out.push("every fiber finished as if no dump had been taken".to_string());
        out
    });
    for line in lines {
        log.line(line);
    }
    on_two_workers(log);
}

/// The same on a runtime of two workers: a fiber on worker 1 is traced by
/// worker 1 itself, and shows up in a dump taken on worker 0; the stack
/// summary says how much stack the sleepers really used.
fn on_two_workers(log: &Log) {
    let rt = spindle::Runtime::builder()
        .workers(2)
        .build()
        .expect("a runtime of two workers");
    let lines = rt.block_on(|| {
        let far = spindle::Builder::new()
            .name("far".into())
            .worker(1)
            .spawn(nap)
            .unwrap();
        spindle::sleep(Duration::from_millis(20)); // let it fall asleep
        let dump = spindle::dump();
        let mut out = Vec::new();
        if let Some(f) = dump.fibers().iter().find(|f| f.name() == Some("far")) {
            let napping = f
                .backtrace()
                .iter()
                .any(|fr| fr.function().ends_with("::nap"));
            out.push(format!(
                "{:?} on worker {} [{:?}], in nap: {napping}, with a timer: {}",
                "far",
                f.worker(),
                f.state(),
                f.timer().is_some()
            ));
        }
        if let Some(s) = dump.stack_summary().iter().find(|s| s.name() == "far") {
            let small = s.deepest() < 16 * 1024;
            out.push(format!(
                "\"far\" used under 16 KiB of its {} KiB stack: {small}",
                s.stack_size() / 1024
            ));
        }
        far.join().unwrap();
        out
    });
    for line in lines {
        log.line(line);
    }
}
