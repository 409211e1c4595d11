//! `topup-host p3-manifest`: spin.p3.toml, the manifest of the WASIp3 build (Spin 4.1+), made
//! from spin.toml. Only each component's `source` and build command change (they name the
//! p3 build); variables, routes, stores, hosts and comments are spin.toml's, so the two cannot
//! drift apart: `host/tests/manifest.rs` fails when the committed file is not what this makes.

use anyhow::{bail, Context, Result};
use toml_edit::Item;

use crate::manifest_edit;

/// Where spin.toml's components are built (`cargo build --target wasm32-wasip2 --release`).
pub const P2_DIR: &str = "target/wasm32-wasip2/release/";
/// Where the p3 build puts them (the `release-p3` profile).
pub const P3_DIR: &str = "target/wasm32-wasip2/release-p3/";
/// spin.toml's build command, up to the `-p <crate>` part.
pub const P2_BUILD: &str = "cargo build --target wasm32-wasip2 --release";
/// The p3 build's command: the switch is the `p3` feature of `topup-spin`, in its own profile.
pub const P3_BUILD: &str =
    "cargo build --target wasm32-wasip2 --profile release-p3 --features topup-spin/p3";

const HEADER: &str = "\
# GENERATED from spin.toml by `topup-host p3-manifest` (the WASIp3 build, for Spin 4.1+); do not
# edit: change spin.toml and run it again. It differs from spin.toml only in each component's
# source and build command.
";

/// spin.p3.toml for the spin.toml `text`.
pub fn p3_manifest(text: &str) -> Result<String> {
    let mut document = manifest_edit::parse(text)?;
    for (id, component) in manifest_edit::components(&mut document)?.iter_mut() {
        let source = component
            .get_mut("source")
            .with_context(|| format!("component {id} has no source"))?;
        replace_prefix(source, P2_DIR, P3_DIR)
            .with_context(|| format!("component {id}: source"))?;
        if let Some(command) = component
            .get_mut("build")
            .and_then(|build| build.get_mut("command"))
        {
            replace_prefix(command, P2_BUILD, P3_BUILD)
                .with_context(|| format!("component {id}: build.command"))?;
        }
    }
    Ok(format!("{HEADER}{document}"))
}

/// Replaces `from` at the start of the string `item` with `to`, keeping its comments.
fn replace_prefix(item: &mut Item, from: &str, to: &str) -> Result<()> {
    let Some(value) = item.as_value_mut() else {
        bail!("not a string");
    };
    let Some(rest) = value.as_str().and_then(|text| text.strip_prefix(from)) else {
        bail!("{value} does not start with {from:?}");
    };
    let new = format!("{to}{rest}");
    manifest_edit::replace_keeping_decor(value, new);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"spin_manifest_version = 2
[component.a]
source = "target/wasm32-wasip2/release/a.wasm" # the route
[component.a.build]
command = "cargo build --target wasm32-wasip2 --release -p a"
"#;

    #[test]
    fn changes_only_source_and_build_command() {
        let out = p3_manifest(MANIFEST).unwrap();
        assert_eq!(
            out,
            format!(
                "{HEADER}{}",
                MANIFEST
                    .replace("release/a.wasm", "release-p3/a.wasm")
                    .replace(
                        "--release -p a",
                        "--profile release-p3 --features topup-spin/p3 -p a"
                    )
            )
        );
    }

    #[test]
    fn refuses_a_source_elsewhere() {
        let error =
            p3_manifest(&MANIFEST.replace("target/wasm32-wasip2/release/", "x/")).unwrap_err();
        assert!(format!("{error:#}").contains("source"), "{error:#}");
    }
}
