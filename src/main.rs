//! The spindle tour (filled in by the demos).
fn main() {}
