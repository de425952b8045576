//! Capturing a backtrace for a fiber dump: [`capture`] (taken on the stack
//! being described), and the [`Frame`]s read from it.
//!
//! [`parse_frames`] reads a resolved capture into [`Frame`]s, keeping the
//! fiber's own.
//!
//! The capture is unresolved (return addresses only, cheap); resolving the
//! symbols (slow, and deep on the stack) happens later, on the scheduler's
//! own stack, when the trace is turned into text.

use std::backtrace::Backtrace;

/// Captures the frames of the calling stack. Never inlined, so that its
/// own frame (named in [`CAPTURE_FRAME`]) marks where the frames of the
/// dump machinery end in the text of the trace.
#[inline(never)]
pub(crate) fn capture() -> Backtrace {
    Backtrace::force_capture()
}

/// The symbol of [`capture`]: frames up to and including it are the
/// capture's own, and are trimmed from a dump.
pub(crate) const CAPTURE_FRAME: &str = "spindle::runtime::task::trace::capture";

/// One frame of a fiber's backtrace.
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let dump = spindle::dump();
///     for frame in dump.fibers()[0].backtrace() {
///         println!("{} {:?}", frame.function(), frame.location());
///     }
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    function: String,
    location: Option<String>,
}

impl Frame {
    /// The function's demangled name, e.g. `server::handle`.
    ///
    /// ```
    /// spindle::run(|| assert!(!spindle::dump().fibers()[0].backtrace()[0].function().is_empty()));
    /// ```
    pub fn function(&self) -> &str {
        &self.function
    }

    /// `file:line:column`, when debug information says.
    ///
    /// ```
    /// spindle::run(|| {
    ///     let dump = spindle::dump();
    ///     let _maybe: Option<&str> = dump.fibers()[0].backtrace()[0].location();
    /// });
    /// ```
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
}

/// Reads std's printed backtrace (`  N: function` lines, each followed by
/// its `at file:line:col` lines) and keeps the fiber's own frames: after
/// the capture and the scheduler's frames, up to the task root.
pub(crate) fn parse_frames(text: &str) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(at) = t.strip_prefix("at ") {
            if let Some(last) = frames.last_mut() {
                last.location.get_or_insert_with(|| at.to_string());
            }
            continue;
        }
        let Some((n, name)) = t.split_once(": ") else {
            continue;
        };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        frames.push(Frame {
            function: strip_hash(name).to_string(),
            location: None,
        });
    }
    let start = frames
        .iter()
        .rposition(|f| {
            // The capture itself, or the last of std's frames when the
            // call to std was a tail call and `capture` left no frame.
            path_of(&f.function).starts_with(CAPTURE_FRAME)
                || f.function.contains("std::backtrace::")
                || f.function.contains("std::backtrace_rs::")
        })
        .map_or(0, |i| i + 1);
    let machinery = |f: &Frame| {
        let path = path_of(&f.function);
        path.starts_with("spindle::runtime::scheduler::")
            || path.starts_with("spindle::runtime::wait::")
            || path.starts_with("spindle::runtime::dump::")
    };
    let mut own: Vec<Frame> = frames.drain(start..).skip_while(machinery).collect();
    if let Some(root) = own
        .iter()
        .position(|f| path_of(&f.function).starts_with("spindle::runtime::spawn::root"))
    {
        own.truncate(root);
    }
    // The catch_unwind around the closure, between it and the root.
    while own.last().is_some_and(|f| {
        [
            "std::panicking::",
            "std::panic::",
            "__rust_try",
            "core::ops::function::",
            "<core::panic::unwind_safe::",
        ]
        .iter()
        .any(|p| f.function.starts_with(p))
    }) {
        own.pop();
    }
    own
}

/// A frame's function as a path: a method printed as `<Type>::method` (as
/// builds with the v0 symbol mangling, such as sanitizer builds, print
/// them) starts with its type's path.
fn path_of(function: &str) -> &str {
    function.trim_start_matches('<')
}

/// `name::h0123456789abcdef` -> `name`.
fn strip_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}
