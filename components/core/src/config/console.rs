//! The operator console's tokens (`admin_token`): who may list deposits and act on them.

use serde_json::Value;

use super::parse::ConfigError;
use super::secret::Secret;

/// The variable holding the operator tokens.
pub const ADMIN_TOKEN: &str = "admin_token";

/// Most operators `admin_token` may name.
const MAX_OPERATORS: usize = 8;
/// Shortest token accepted: an operator token opens every deposit.
const MIN_TOKEN_LEN: usize = 16;

/// An operator: the name its actions are recorded under, and its token.
#[derive(Debug, Clone)]
pub struct Operator {
    /// Recorded on the timeline of what it does (`[a-z0-9_-]{1,32}`).
    pub name: String,
    /// Its bearer token.
    pub token: Secret,
}

/// The operators, from `admin_token`: one token (recorded as `admin`), or a JSON array of
/// `{"name","token"}`. Empty: the console is off.
#[derive(Debug, Clone, Default)]
pub struct Console {
    /// Every operator.
    pub operators: Vec<Operator>,
}

struct Named {
    name: String,
    token: String,
}

/// `{"name","token"}` and nothing else (the same `Value` parse as `bots`: no code of its own).
fn named(entry: &Value) -> Option<Named> {
    let object = entry.as_object().filter(|o| o.len() == 2)?;
    Some(Named {
        name: object.get("name")?.as_str()?.to_string(),
        token: object.get("token")?.as_str()?.to_string(),
    })
}

impl Console {
    /// Parses `admin_token`; errors name the variable and the operator, never a token.
    pub fn parse(raw: &Secret) -> Result<Self, ConfigError> {
        let raw = std::str::from_utf8(raw.expose()).unwrap_or_default().trim();
        let named: Vec<Named> = if raw.starts_with('[') {
            serde_json::from_str::<Value>(raw)
                .ok()
                .and_then(|v| v.as_array().map(|a| a.iter().map(named).collect()))
                .and_then(|all: Option<Vec<Named>>| all)
                .ok_or_else(|| {
                    ConfigError::new(
                        ADMIN_TOKEN,
                        "must be one token or a JSON array of {\"name\",\"token\"}",
                    )
                })?
        } else if raw.is_empty() {
            Vec::new()
        } else {
            vec![Named {
                name: "admin".into(),
                token: raw.into(),
            }]
        };
        if named.len() > MAX_OPERATORS {
            return Err(ConfigError::new(
                ADMIN_TOKEN,
                format!("names at most {MAX_OPERATORS} operators"),
            ));
        }
        let mut operators: Vec<Operator> = Vec::with_capacity(named.len());
        for Named { name, token } in named {
            let valid = (1..=32).contains(&name.len())
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !valid {
                return Err(ConfigError::new(
                    ADMIN_TOKEN,
                    "an operator's name must be 1 to 32 of a-z, 0-9, - and _",
                ));
            }
            if token.len() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
                return Err(ConfigError::new(
                    ADMIN_TOKEN,
                    format!("operator {name}: the token must be {MIN_TOKEN_LEN} characters or more, without spaces"),
                ));
            }
            if operators.iter().any(|o| o.name == name) {
                return Err(ConfigError::new(
                    ADMIN_TOKEN,
                    format!("operator {name} is named twice"),
                ));
            }
            let token = Secret::new(token);
            if operators.iter().any(|o| o.token.same_as(&token)) {
                return Err(ConfigError::new(
                    ADMIN_TOKEN,
                    format!("operator {name} has another operator's token"),
                ));
            }
            operators.push(Operator { name, token });
        }
        Ok(Self { operators })
    }

    /// Refuses a token that is also one of `keys` (a bot's key or the shared secret).
    pub fn distinct_from(&self, keys: &[&Secret]) -> Result<(), ConfigError> {
        match self
            .operators
            .iter()
            .find(|o| keys.iter().any(|k| k.same_as(&o.token)))
        {
            Some(operator) => Err(ConfigError::new(
                ADMIN_TOKEN,
                format!(
                    "operator {}'s token is also a bot's key or shared_secret",
                    operator.name
                ),
            )),
            None => Ok(()),
        }
    }

    /// The operator whose token is `token` (a bearer token); every token is compared, in
    /// constant time. A configuration error while none is set (the console is off).
    pub fn operator(&self, token: Option<&str>) -> Result<Option<&Operator>, ConfigError> {
        if self.operators.is_empty() {
            return Err(ConfigError::new(
                ADMIN_TOKEN,
                "is not set: the operator console is off",
            ));
        }
        let Some(token) = token else {
            return Ok(None);
        };
        let mut found = None;
        for operator in &self.operators {
            if operator.token.matches(token) {
                found = Some(operator);
            }
        }
        Ok(found)
    }
}
