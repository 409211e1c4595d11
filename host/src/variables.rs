//! Application variables as `spin up` resolves them: `SPIN_VARIABLE_<UPPER_NAME>` from the
//! environment, else the manifest default; a required variable with no value stops startup.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};

use crate::manifest::{expand_template, Manifest};

/// Resolved application variables.
#[derive(Debug, Clone, Default)]
pub struct AppVariables {
    values: HashMap<String, String>,
}

/// Why a component's `variables.get` failed (mirrors `fermyon:spin/variables.error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    /// The name breaks Spin's naming rules.
    InvalidName(String),
    /// The component maps no such variable.
    Undefined(String),
}

impl AppVariables {
    /// Resolves every declared variable from `env` (name → value) and the defaults.
    pub fn resolve(manifest: &Manifest, env: &HashMap<String, String>) -> Result<Self> {
        let mut values = HashMap::new();
        let mut missing = Vec::new();
        for (name, decl) in &manifest.variables {
            let from_env = env.get(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()));
            match (from_env, &decl.default) {
                (Some(value), _) | (None, Some(value)) => {
                    values.insert(name.clone(), value.clone());
                }
                (None, None) => missing.push(format!("Key({name:?})")),
            }
        }
        if !missing.is_empty() {
            bail!(
                "provider error: no provider resolved required variable(s): [{}]",
                missing.join(", ")
            );
        }
        Ok(Self { values })
    }

    /// The value of an application variable.
    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// Expands a `{{ name }}` template against these values.
    pub fn expand(&self, template: &str) -> Result<String> {
        expand_template(template, |name| self.get(name))
    }

    /// A component's variables, expanded once (the environment does not change at runtime).
    pub fn for_component(
        &self,
        component: &str,
        templates: &BTreeMap<String, String>,
    ) -> Result<ComponentVariables> {
        let mut values = HashMap::new();
        for (name, template) in templates {
            values.insert(name.clone(), self.expand(template)?);
        }
        Ok(ComponentVariables {
            component: component.to_string(),
            values,
        })
    }
}

/// The variables one component may read.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    component: String,
    values: HashMap<String, String>,
}

impl ComponentVariables {
    /// `variables.get(name)` with Spin's checks and error texts.
    pub fn get(&self, name: &str) -> Result<String, GetError> {
        validate_get_name(name)?;
        self.values.get(name).cloned().ok_or_else(|| {
            GetError::Undefined(format!("no variable for {:?}.{:?}", self.component, name))
        })
    }
}

/// A component's variables as its instances read them: every `get` reads the current values,
/// so values replaced while an instance lives (as Spin's dynamic providers, Vault or Azure
/// Key Vault, allow) are what its next read sees, in a reused WASIp3 instance too.
#[derive(Debug, Default)]
pub struct LiveVariables(std::sync::RwLock<std::sync::Arc<ComponentVariables>>);

impl LiveVariables {
    /// Starts with `values`.
    pub fn new(values: ComponentVariables) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(values)))
    }

    /// `variables.get(name)` on the current values.
    pub fn get(&self, name: &str) -> Result<String, GetError> {
        self.current().get(name)
    }

    /// Replaces the values every later `get` sees.
    pub fn replace(&self, values: ComponentVariables) {
        // A poisoned lock still holds whole values: take it over.
        let mut slot = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = std::sync::Arc::new(values);
    }

    fn current(&self) -> std::sync::Arc<ComponentVariables> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

fn validate_get_name(name: &str) -> Result<(), GetError> {
    if name.is_empty() {
        return Err(GetError::InvalidName(format!(
            "{name:?}: must not be empty"
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(GetError::InvalidName(format!(
            "{name:?}: invalid character '{bad}'. Variable names may contain only lower-case letters, numbers, and underscores."
        )));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(GetError::InvalidName(format!(
            "{name:?}: must start with a lowercase ASCII letter"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_follows_spin_rules() {
        let vars = ComponentVariables {
            component: "probe".into(),
            values: HashMap::from([("greeting".to_string(), "hello".to_string())]),
        };
        assert_eq!(vars.get("greeting").unwrap(), "hello");
        assert_eq!(
            vars.get("unmapped"),
            Err(GetError::Undefined(
                "no variable for \"probe\".\"unmapped\"".into()
            ))
        );
        assert!(
            matches!(vars.get("GREETING"), Err(GetError::InvalidName(m)) if m.contains("invalid character 'G'"))
        );
        assert!(
            matches!(vars.get(""), Err(GetError::InvalidName(m)) if m.contains("must not be empty"))
        );
        assert!(
            matches!(vars.get("1abc"), Err(GetError::InvalidName(m)) if m.contains("must start"))
        );
        assert!(matches!(vars.get("a-b"), Err(GetError::InvalidName(_))));
    }
}
