//! Reading `spin.toml` (manifest version 2): routes, components, variables, with the same
//! validation Spin applies at load time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// A loaded application.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Directory holding `spin.toml`; component sources resolve against it.
    pub dir: PathBuf,
    /// Application name.
    pub name: String,
    /// Application variables.
    pub variables: BTreeMap<String, VariableDecl>,
    /// HTTP routes in manifest order.
    pub routes: Vec<HttpRoute>,
    /// Components by id.
    pub components: BTreeMap<String, ComponentDecl>,
}

/// An application variable declaration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    /// Default value.
    pub default: Option<String>,
    /// Whether a value must be supplied.
    #[serde(default)]
    pub required: bool,
    /// Whether the value is a secret.
    #[serde(default)]
    pub secret: bool,
    /// Free text.
    pub description: Option<String>,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Clone)]
pub struct HttpRoute {
    /// The route pattern, e.g. `/health` or `/api/...`.
    pub route: String,
    /// Component id.
    pub component: String,
}

/// One `[component.<id>]`.
#[derive(Debug, Clone)]
pub struct ComponentDecl {
    /// Absolute path of the `.wasm` file.
    pub source: PathBuf,
    /// Outbound host patterns, possibly templated.
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value store labels the component may open.
    pub key_value_stores: Vec<String>,
    /// Component variables: name → template.
    pub variables: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: toml::Value,
    component: String,
}

#[derive(Deserialize)]
struct RawComponent {
    source: String,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

impl Manifest {
    /// Loads and validates `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Self::parse(&text, dir).with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Validates manifest `text` whose component sources are relative to `dir`.
    pub fn parse(text: &str, dir: PathBuf) -> Result<Self> {
        let raw: RawManifest = toml::from_str(text)?;
        if raw.spin_manifest_version != 2 {
            bail!("only spin_manifest_version = 2 is supported");
        }

        for (name, decl) in &raw.variables {
            validate_manifest_variable_name(name)?;
            if decl.required == decl.default.is_some() {
                bail!("variable {name:?}: must be `required` OR have a `default`");
            }
        }

        let mut components = BTreeMap::new();
        for (id, component) in raw.component {
            for template in component
                .variables
                .values()
                .chain(component.allowed_outbound_hosts.iter())
            {
                for referenced in template_names(template)? {
                    if !raw.variables.contains_key(&referenced) {
                        bail!("component {id:?}: invalid variable template: unknown variable {referenced:?}");
                    }
                }
            }
            for name in component.variables.keys() {
                validate_manifest_variable_name(name)?;
            }
            for host in &component.allowed_outbound_hosts {
                if !host.contains("{{") {
                    crate::outbound::AllowedHost::parse(host).with_context(|| {
                        format!("component {id:?}: allowed_outbound_hosts is malformed")
                    })?;
                }
            }
            components.insert(
                id,
                ComponentDecl {
                    source: dir.join(&component.source),
                    allowed_outbound_hosts: component.allowed_outbound_hosts,
                    key_value_stores: component.key_value_stores,
                    variables: component.variables,
                },
            );
        }

        let mut routes = Vec::new();
        for trigger in raw.trigger.http {
            let route = match trigger.route {
                toml::Value::String(route) => route,
                _ => bail!("only string routes are supported (private routes are not)"),
            };
            if !route.starts_with('/') {
                bail!("route {route:?} must start with /");
            }
            if !components.contains_key(&trigger.component) {
                bail!(
                    "route {route:?} names unknown component {:?}",
                    trigger.component
                );
            }
            routes.push(HttpRoute {
                route,
                component: trigger.component,
            });
        }

        Ok(Self {
            dir,
            name: raw.application.name,
            variables: raw.variables,
            routes,
            components,
        })
    }
}

/// Spin's rule for names in the manifest: lower-case snake case.
fn validate_manifest_variable_name(name: &str) -> Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!("variable name {name:?}: '_'-separated words must be all lowercase");
    }
    Ok(())
}

/// The variable names a `{{ name }}` template refers to.
pub fn template_names(template: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .with_context(|| format!("unterminated template in {template:?}"))?;
        names.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    Ok(names)
}

/// Expands `{{ name }}` templates with `lookup`.
pub fn expand_template(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .with_context(|| format!("unterminated template in {template:?}"))?;
        let name = after[..end].trim();
        out.push_str(&lookup(name).with_context(|| format!("invalid variable name: {name}"))?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(template_names("pre-{{ a }}-{{b}}").unwrap(), vec!["a", "b"]);
        let lookup = |n: &str| (n == "a").then(|| "x".to_string());
        assert_eq!(
            expand_template("pre-{{ a }}-post", lookup).unwrap(),
            "pre-x-post"
        );
        assert!(expand_template("{{ b }}", lookup).is_err());
        assert!(template_names("{{ a").is_err());
    }

    #[test]
    fn manifest_names() {
        assert!(validate_manifest_variable_name("shared_secret").is_ok());
        for bad in ["Secret", "SECRET", "1abc", "a-b", ""] {
            assert!(validate_manifest_variable_name(bad).is_err(), "{bad}");
        }
    }
}
