//! No shipped component grows past its build's limit: the WASIp2 build (spin.toml,
//! `target/wasm32-wasip2/release`) and the WASIp3 build (spin.p3.toml,
//! `target/wasm32-wasip2/release-p3`), as scripts/wasm-link.sh links them (wasm-opt on the
//! core module, the component's debug names stripped; scripts/setup.sh installs wasm-opt and
//! wasm-tools). The target is 300 KiB in both (issues 21 and 25): the WASIp2 build meets it;
//! the WASIp3 build does not yet (its sweep is 332.6 KiB), so its limit holds today's largest
//! with 0.4 KiB to spare, to be lowered as it shrinks. Runs on the built `.wasm` files; scripts/test.sh builds both first.

use std::path::{Path, PathBuf};

use topup_host::manifest::Manifest;

/// The largest a shipped component of each build may be today (the target is 300 KiB).
const MAX_P2_BYTES: u64 = 300 * 1024;
// WASIp3: the sweep is 336.7 KiB (it reads operators' notes since the console: a refund marked
// handled or a review closed ends the deposit's life; it raises alerts), the console's actions 331. Issue 25
// stays open on this build's size.
const MAX_P3_BYTES: u64 = 337 * 1024;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn no_shipped_component_grows_past_its_builds_limit() {
    let mut checked = 0;
    let mut over = Vec::new();
    for (manifest, build, limit) in [
        (
            "spin.toml",
            "`cargo build --target wasm32-wasip2 --release`",
            MAX_P2_BYTES,
        ),
        (
            "spin.p3.toml",
            "`cargo build --target wasm32-wasip2 --profile release-p3 --features topup-spin/p3`",
            MAX_P3_BYTES,
        ),
    ] {
        let loaded = Manifest::load(&root().join(manifest))
            .unwrap_or_else(|e| panic!("{manifest} loads: {e:#}"));
        assert!(!loaded.components.is_empty(), "{manifest} has components");
        for (id, component) in &loaded.components {
            let bytes = std::fs::metadata(&component.source)
                .unwrap_or_else(|e| {
                    panic!(
                        "{manifest}: component {id}: {} is not built ({e}): run {build} \
                         (scripts/test.sh builds both)",
                        component.source.display()
                    )
                })
                .len();
            checked += 1;
            if bytes > limit {
                over.push(format!(
                    "{manifest}: component {id} ({}) is {bytes} bytes ({:.1} KiB), over {} bytes",
                    component.source.display(),
                    bytes as f64 / 1024.0,
                    limit
                ));
            }
        }
    }
    assert!(checked >= 22, "both builds' components were checked");
    assert!(
        over.is_empty(),
        "components over their build's limit (linked without wasm-opt and wasm-tools? \
         scripts/wasm-link.sh needs both on PATH):\n{}",
        over.join("\n")
    );
}
