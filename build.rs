//! Compiles the hand-written context switch in `asm/<arch>.S` with `cc`,
//! with `SPINDLE_FP_ENV` defined when the `fp-env` feature is on.
//!
//! spindle supports Linux on x86_64 and aarch64 only: any other target fails
//! here, at build time, with a message that says so.

use std::env;

fn main() {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let file = match (arch.as_str(), os.as_str()) {
        ("x86_64", "linux") => "asm/x86_64.S",
        ("aarch64", "linux") => "asm/aarch64.S",
        _ => panic!(
            "spindle supports x86_64-linux and aarch64-linux only; \
             this target is {arch}-{os}, for which there is no context switch in asm/"
        ),
    };
    println!("cargo:rerun-if-changed={file}");
    println!("cargo:rerun-if-changed=asm/header.h");
    println!("cargo:rerun-if-changed=build.rs");
    let mut build = cc::Build::new();
    build.file(file).include("asm");
    // The `fp-env` feature: the switch keeps the floating-point control
    // state too (see "Floating-point control state" in asm/x86_64.S).
    if env::var_os("CARGO_FEATURE_FP_ENV").is_some() {
        build.define("SPINDLE_FP_ENV", None);
    }
    build.compile("spindle_switch");
}
