//! The build script of every shipped component (`build = "../component-build.rs"`): link
//! settings for its `.wasm`.
//!
//! wasm-ld writes every function index, global and address in the code as a five-byte LEB128
//! unless it is told to compress them, which it may do only when no debug information is
//! written. So the release builds of wasm32 (both profiles inherit `release`) without debug
//! information strip what the precompiled std carries and compress: about 8% of every
//! component, with the same code.

fn main() {
    println!("cargo:rerun-if-changed=../component-build.rs");
    let var = |name| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_ARCH") == "wasm32"
        && var("PROFILE") == "release"
        && var("DEBUG") == "false"
    {
        println!("cargo:rustc-link-arg-cdylib=--strip-debug");
        println!("cargo:rustc-link-arg-cdylib=--compress-relocations");
    }
}
