//! `topup-host single-label-manifest`: spin.single-label.toml, the manifest for a platform
//! that offers only the `default` key-value label (Fermyon Wasm Functions), made from
//! spin.toml. Each component's `key_value_stores` loses `claims` and `kv_labels` defaults to
//! `single`, so the claims go to `default`; nothing else changes. `host/tests/manifest.rs`
//! fails when the committed file is not what this makes.

use anyhow::{bail, Result};
use toml_edit::Item;

use crate::manifest_edit;

const HEADER: &str = "\
# GENERATED from spin.toml by `topup-host single-label-manifest` (one key-value label, for
# platforms that offer only `default`); do not edit: change spin.toml and run it again. It
# differs from spin.toml only in each component's key_value_stores and kv_labels' default.
";

/// spin.single-label.toml for the spin.toml `text`.
pub fn single_label_manifest(text: &str) -> Result<String> {
    let mut document = manifest_edit::parse(text)?;
    let Some(default) = document
        .get_mut("variables")
        .and_then(|variables| variables.get_mut("kv_labels"))
        .and_then(|kv_labels| kv_labels.get_mut("default"))
        .and_then(Item::as_value_mut)
    else {
        bail!("spin.toml declares no kv_labels variable with a default");
    };
    manifest_edit::replace_keeping_decor(default, "single");
    for (id, component) in manifest_edit::components(&mut document)?.iter_mut() {
        let Some(stores) = component
            .get_mut("key_value_stores")
            .and_then(Item::as_array_mut)
        else {
            continue;
        };
        if !stores.iter().any(|label| label.as_str() == Some("default")) {
            bail!("component {id} stores in `claims` without `default`");
        }
        stores.retain(|label| label.as_str() != Some("claims"));
    }
    Ok(format!("{HEADER}{document}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"spin_manifest_version = 2
[variables]
kv_labels = { default = "two", description = "labels" }
[component.a]
source = "a.wasm" # the route
key_value_stores = ["default", "claims"]
[component.b]
source = "b.wasm"
"#;

    #[test]
    fn drops_claims_and_defaults_to_single() {
        let out = single_label_manifest(MANIFEST).unwrap();
        assert_eq!(
            out,
            format!(
                "{HEADER}{}",
                MANIFEST
                    .replace("default = \"two\"", "default = \"single\"")
                    .replace("[\"default\", \"claims\"]", "[\"default\"]")
            )
        );
    }

    #[test]
    fn refuses_a_manifest_without_kv_labels() {
        let error = single_label_manifest("[component.a]\nsource = \"a.wasm\"\n").unwrap_err();
        assert!(error.to_string().contains("kv_labels"), "{error}");
    }
}
