//! The runtime's demos, as the tour shows them: `cargo run --release
//! --example runtime_tour`.

#[path = "runtime_demos/mod.rs"]
mod runtime_demos;

fn main() {
    runtime_demos::tour(&runtime_demos::Log::echo());
}
