//! `topup-host cloud-manifest`: spin.toml for Fermyon Cloud, which does not expand `{{ variable }}`
//! templates in `allowed_outbound_hosts`. Those entries become literal origins; everything else
//! (comments, order, component variables, which Cloud does resolve) stays as written.

use anyhow::{Context, Result};
use toml_edit::Item;

use crate::manifest::expand_template;
use crate::manifest_edit;
use crate::outbound::AllowedHost;

/// `text` with every templated `allowed_outbound_hosts` entry expanded by `lookup` (a
/// variable's value, as `spin up` would resolve it); each result must be a valid origin.
pub fn cloud_manifest(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut document = manifest_edit::parse(text)?;
    for (id, component) in manifest_edit::components(&mut document)?.iter_mut() {
        let Some(hosts) = component
            .get_mut("allowed_outbound_hosts")
            .and_then(Item::as_array_mut)
        else {
            continue;
        };
        let mut unused = Vec::new();
        for (index, entry) in hosts.iter_mut().enumerate() {
            let Some(template) = entry.as_str().filter(|t| t.contains("{{")) else {
                continue;
            };
            let origin = expand_template(template, &lookup)
                .with_context(|| format!("component {id}: {template}"))?;
            // An entry whose variable is empty is left out: a literal empty entry would stop
            // the app from loading, where a template that expands to nothing only denies the
            // component its outbound calls (Spin 3.x and 4.0) or is skipped (later Spin).
            if matches!(origin.trim(), "" | "http://" | "https://") {
                unused.push(index);
                continue;
            }
            AllowedHost::parse(&origin).with_context(|| {
                format!("component {id}: {template} expands to {origin:?}, not an origin")
            })?;
            manifest_edit::replace_keeping_decor(entry, origin);
        }
        for index in unused.into_iter().rev() {
            hosts.remove(index);
        }
    }
    Ok(document.to_string())
}

/// A variable's value as `spin up` resolves it from the environment: `SPIN_VARIABLE_<NAME>`,
/// else the manifest's default (`None` for a required variable left unset).
pub fn from_environment<'a>(
    manifest: &'a crate::manifest::Manifest,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        std::env::var(format!("SPIN_VARIABLE_{}", name.to_uppercase()))
            .ok()
            .or_else(|| manifest.variables.get(name)?.default.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"spin_manifest_version = 2
[component.a]
# the PG
allowed_outbound_hosts = ["{{ pg }}", "https://fixed.example.com"]
[component.a.variables]
pg = "{{ pg }}"
"#;

    fn lookup(name: &str) -> Option<String> {
        (name == "pg").then(|| "https://pg.example.com:8443".to_string())
    }

    #[test]
    fn expands_only_templated_outbound_hosts() {
        let out = cloud_manifest(MANIFEST, lookup).unwrap();
        assert_eq!(
            out,
            MANIFEST.replacen(
                "\"{{ pg }}\", \"https",
                "\"https://pg.example.com:8443\", \"https",
                1
            )
        );
    }

    #[test]
    fn drops_an_entry_whose_variable_is_empty_as_spin_skips_it() {
        let manifest = MANIFEST.replace("\"{{ pg }}\", ", "\"{{ pg }}\", \"{{ slot }}\", ");
        let slot_empty = |name: &str| match name {
            "slot" => Some(String::new()),
            _ => lookup(name),
        };
        let out = cloud_manifest(&manifest, slot_empty).unwrap();
        assert!(out.contains(
            r#"allowed_outbound_hosts = ["https://pg.example.com:8443", "https://fixed.example.com"]"#
        ), "{out}");
    }

    #[test]
    fn refuses_a_value_that_is_not_an_origin_or_is_missing() {
        let with_path = |_: &str| Some("https://pg.example.com/api".to_string());
        let error = cloud_manifest(MANIFEST, with_path).unwrap_err();
        assert!(format!("{error:#}").contains("not an origin"), "{error:#}");
        let error = cloud_manifest(MANIFEST, |_: &str| None).unwrap_err();
        assert!(format!("{error:#}").contains("pg"), "{error:#}");
    }
}
