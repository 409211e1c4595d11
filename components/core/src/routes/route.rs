//! What every route shares: its declaration ([`Route`]) and [`serve`], which applies CORS,
//! preflight, method, auth, body size and content type before the route's handler.

use crate::config::{Config, ConfigError, Sections};
use crate::error::{ApiError, ErrorCode};
use crate::http::{Request, Response};
use crate::platform::Platform;
use crate::signature::verify_bearer;

impl Route {
    /// Every error code this route may answer: the shared checks' (method, body size,
    /// configuration; bearer token and header form when `auth`; content type when
    /// `json_body`) and its handler's.
    pub fn error_codes(&self) -> Vec<ErrorCode> {
        let mut codes = vec![
            ErrorCode::MethodNotAllowed,
            ErrorCode::BodyTooLarge,
            ErrorCode::ConfigError,
        ];
        if self.auth.is_some() {
            codes.extend([ErrorCode::Unauthorized, ErrorCode::InvalidHeader]);
        }
        if self.json_body {
            codes.extend([ErrorCode::InvalidHeader, ErrorCode::UnsupportedMediaType]);
        }
        codes.extend(self.errors);
        codes.sort();
        codes.dedup();
        codes
    }

    /// The Spin variables this route reads.
    pub fn variables(&self) -> Vec<&'static str> {
        crate::config::ROUTE_VARIABLES
            .iter()
            .copied()
            .chain(
                self.sections
                    .list()
                    .iter()
                    .flat_map(|s| s.variables().iter().copied()),
            )
            .collect()
    }
}

/// Headers a browser may send (CORS preflight).
pub const CORS_ALLOW_HEADERS: &str =
    "Authorization, Content-Type, X-Signature, X-Timestamp, X-Nonce";

/// Who must present a bearer token on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The bot: `shared_secret` (or the previous one).
    Bot,
    /// The Central PG: `pg_shared_secret`, or the bot's secrets when it is unset.
    CentralPg,
}

/// What a route accepts.
pub struct Route {
    /// The one method the route serves besides OPTIONS.
    pub method: &'static str,
    /// Value of `Allow` / `Access-Control-Allow-Methods`.
    pub allow: &'static str,
    /// Whose bearer token is required, if any.
    pub auth: Option<Peer>,
    /// Whether the body must be `application/json`.
    pub json_body: bool,
    /// The configuration it reads (besides CORS); `Auth` when `auth` is set (and
    /// `CentralPg` for the Central PG).
    pub sections: Sections,
    /// The error codes its handler may answer, besides those of the shared checks.
    pub errors: &'static [ErrorCode],
}

/// Route handler: the request has passed every shared check.
pub type Handler = fn(&Request, &Platform, &Config) -> Result<Response, ApiError>;

/// Runs the shared checks, then `handler`, and renders any error.
pub fn serve(route: &Route, request: &Request, platform: &Platform, handler: Handler) -> Response {
    let config = match Config::load_sections(platform.variables, route.sections) {
        Ok(config) => config,
        Err(error) => return refuse_config(request, error),
    };
    let origin = allowed_origin(request, &config);
    let response = if request.method == "OPTIONS" {
        Response::empty(204)
            .with_header("access-control-allow-methods", route.allow)
            .with_header("access-control-allow-headers", CORS_ALLOW_HEADERS)
            .with_header("access-control-max-age", "600")
    } else {
        match checked(route, request, &config).and_then(|()| handler(request, platform, &config)) {
            Ok(response) => response,
            Err(error) => {
                log_error(request, &error);
                debug_assert!(
                    route.error_codes().contains(&error.code()),
                    "{} answered {}, which its Route does not declare",
                    request.path,
                    error.code()
                );
                error.into_response()
            }
        }
    };
    with_cors(response, origin, request)
}

/// The answer to a request the configuration cannot serve (500 `CONFIG_ERROR`, naming the
/// variable), logged like every refusal. Also the glue's, when `kv_labels` is wrong.
pub fn refuse_config(request: &Request, error: ConfigError) -> Response {
    let error = ApiError::Config(error);
    log_error(request, &error);
    error.into_response()
}

fn checked(route: &Route, request: &Request, config: &Config) -> Result<(), ApiError> {
    if request.method != route.method && !(route.method == "GET" && request.method == "HEAD") {
        return Err(ApiError::MethodNotAllowed { allow: route.allow });
    }
    if let Some(peer) = route.auth {
        let authorization = header(request, "authorization")?;
        let secrets = match peer {
            Peer::Bot => config.auth()?,
            Peer::CentralPg => config.central_auth()?,
        };
        if !verify_bearer(secrets.inbound_secrets(), authorization) {
            return Err(ApiError::Unauthorized);
        }
    }
    if request.body_exceeded_limit {
        return Err(ApiError::BodyTooLarge);
    }
    if route.json_body {
        let content_type = header(request, "content-type")?.unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    Ok(())
}

/// A single-valued header (shared with the gateway adapters, which read their own headers).
pub use crate::error::header;

fn allowed_origin(request: &Request, config: &Config) -> Option<String> {
    let origin = request.header("origin").ok().flatten()?;
    config
        .allowed_origins
        .iter()
        .any(|allowed| allowed == origin || allowed == "*")
        .then(|| origin.to_string())
}

fn with_cors(mut response: Response, origin: Option<String>, request: &Request) -> Response {
    if let Some(origin) = origin {
        response = response.with_header("access-control-allow-origin", &origin);
    }
    if request.headers.iter().any(|(name, _)| name == "origin") {
        response = response.with_header("vary", "Origin");
    }
    response
}

/// One line per refused request on stderr; never a secret, a signature or a body. Server-side
/// failures (5xx) add their cause, e.g. why the store failed.
fn log_error(request: &Request, error: &ApiError) {
    let cause = match error {
        ApiError::Store(e) => format!(": {e}"),
        ApiError::Config(e) => format!(": {e}"),
        ApiError::Gateway(detail) | ApiError::CreditFailed(detail) => format!(": {detail}"),
        _ => String::new(),
    };
    eprintln!(
        "{} {} -> {} {}{cause}",
        request.method,
        request.path,
        error.status(),
        error.code()
    );
}
