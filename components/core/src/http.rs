//! The host-neutral HTTP request and response the route handlers work with.

use serde::Serialize;

/// Largest request body the service reads; larger bodies are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How much of an upstream body is kept in errors and `creditResult`.
pub const BODY_EXCERPT_BYTES: usize = 300;

/// The first bytes of an upstream body, as text.
pub fn body_excerpt(body: &[u8]) -> String {
    let cut = body.len().min(BODY_EXCERPT_BYTES);
    String::from_utf8_lossy(&body[..cut]).into_owned()
}

/// An inbound request as the component received it, body already read (within the limit).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Method as sent (`GET`, `POST`, …; methods are case-sensitive).
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    /// Header names in lower case; values that are not UTF-8 are kept as `None`.
    pub headers: Vec<(String, Option<String>)>,
    /// The raw body bytes (empty when the limit was exceeded).
    pub body: Vec<u8>,
    /// Set by the adapter when the body was longer than [`MAX_BODY_BYTES`].
    pub body_exceeded_limit: bool,
}

/// Why a header could not be read as one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The header appears more than once.
    Repeated,
    /// The value is not valid UTF-8.
    NotUtf8,
}

impl Request {
    /// Builds a request from a method and a path that may carry a query.
    pub fn new(method: &str, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Self {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            ..Self::default()
        }
    }

    /// Adds a header (builder style, for tests and adapters).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), Some(value.to_string())));
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The single value of header `name`; `Ok(None)` when absent.
    pub fn header(&self, name: &str) -> Result<Option<&str>, HeaderProblem> {
        let mut found = self.headers.iter().filter(|(n, _)| n == name);
        match (found.next(), found.next()) {
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(HeaderProblem::Repeated),
            (Some((_, None)), None) => Err(HeaderProblem::NotUtf8),
            (Some((_, Some(v))), None) => Ok(Some(v.as_str())),
        }
    }
}

/// A response to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &impl Serialize) -> Self {
        Self {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// An empty response.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The first value of header `name` (for tests).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (for tests).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}
