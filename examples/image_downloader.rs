//! The image downloader of the tour, on its own: N images from a local
//! HTTP/1.1 server (spindle serves it too, on 127.0.0.1) whose every answer
//! takes LATENCY_MS; one after another, then a fiber per image.
//!
//! ```text
//! cargo run --release --example image_downloader -- [N] [LATENCY_MS]   # default 10 100
//! ```

use std::time::Duration;

#[path = "net_demos/mod.rs"]
mod net_demos;
#[path = "runtime_demos/mod.rs"]
mod runtime_demos;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(10, |a| a.parse().expect("N"));
    let ms: u64 = args.next().map_or(100, |a| a.parse().expect("LATENCY_MS"));
    net_demos::image_downloader(&runtime_demos::Log::echo(), n, Duration::from_millis(ms));
}
