//! Finding fibers in a `spindle::Dump`, for the dump tests.

use spindle::{Dump, FiberDump};

/// The fiber named `name` in `dump` (panics with the dump if none).
pub fn fiber<'a>(dump: &'a Dump, name: &str) -> &'a FiberDump {
    dump.fibers()
        .iter()
        .find(|f| f.name() == Some(name))
        .unwrap_or_else(|| panic!("no fiber {name:?} in\n{dump}"))
}

/// Whether `f`'s backtrace has a frame whose function ends with `function`.
pub fn has_frame(f: &FiberDump, function: &str) -> bool {
    f.backtrace()
        .iter()
        .any(|fr| fr.function().ends_with(function))
}
