//! What every route shares: its declaration ([`Route`]) and [`serve`], which applies CORS,
//! preflight, method, auth, body size and content type before the route's handler.

use crate::config::{shared_key, Config, ConfigError, Sections};
use crate::error::{ApiError, ErrorCode};
use crate::http::{Request, Response};
use crate::ids::BotId;
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
            .chain(
                self.raises_alerts
                    .then_some(crate::config::ALERT_SWITCHES)
                    .into_iter()
                    .flatten(),
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
    /// A bot: `default` by `shared_secret` (or the previous one), a bot of `bots` by one of
    /// its keys; the handler learns which.
    Bot,
    /// The deployment's operator (the sweep's scheduler): the `default` bot's secrets only,
    /// never another bot's key.
    Operator,
    /// The Central PG: `pg_shared_secret`, or the bot's secrets when it is unset.
    CentralPg,
    /// An operator of the console: one of the `admin_token` tokens, never a bot's key.
    Admin,
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
    /// Whether it may raise an alert (it then reads `alert_url` and `alert_telegram_chat_id`,
    /// only when it does: see [`crate::alert::raise`]).
    pub raises_alerts: bool,
    /// The configuration it reads (besides CORS); `Auth` when `auth` is set (and `Bots`
    /// for a bot, `CentralPg` for the Central PG).
    pub sections: Sections,
    /// The error codes its handler may answer, besides those of the shared checks.
    pub errors: &'static [ErrorCode],
}

/// Route handler: the request has passed every shared check; the bot that called, on a
/// route a bot calls.
pub type Handler = fn(&Request, &Platform, &Config, Option<&BotId>) -> Result<Response, ApiError>;

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
        let answer = checked(route, request, &config)
            .and_then(|caller| handler(request, platform, &config, caller.as_ref()));
        match answer {
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

/// The shared checks; the bot that called, on a route a bot calls.
fn checked(route: &Route, request: &Request, config: &Config) -> Result<Option<BotId>, ApiError> {
    if request.method != route.method && !(route.method == "GET" && request.method == "HEAD") {
        return Err(ApiError::MethodNotAllowed { allow: route.allow });
    }
    let mut caller = None;
    if let Some(peer) = route.auth {
        let authorization = header(request, "authorization")?;
        let known = match peer {
            Peer::Bot => {
                caller = identify_bot(config, authorization)?;
                caller.is_some()
            }
            Peer::Operator => verify_bearer(config.auth()?.inbound_secrets(), authorization),
            Peer::CentralPg => {
                verify_bearer(config.central_auth()?.inbound_secrets(), authorization)
            }
            Peer::Admin => operator(config, request)?.is_some(),
        };
        if !known {
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
    Ok(caller)
}

/// The operator whose token the request carries; refused as a configuration error while
/// `admin_token` names none (the console is off).
pub fn operator(config: &Config, request: &Request) -> Result<Option<String>, ApiError> {
    let console = config.console()?;
    let token = header(request, "authorization")?.and_then(crate::signature::bearer_token);
    let operator = console.operator(token)?;
    Ok(operator.map(|o| o.name.clone()))
}

/// The bot whose key `authorization` (`Bearer …`) carries: `default` for the single-bot
/// secrets, a named bot for one of its keys. Every key of every bot is compared, in constant
/// time; a key two bots share names neither (a configuration error).
fn identify_bot(config: &Config, authorization: Option<&str>) -> Result<Option<BotId>, ApiError> {
    let default = verify_bearer(config.auth()?.inbound_secrets(), authorization);
    let mut found = default.then(BotId::default);
    let mut shared = None;
    for bot in &config.bots()?.named {
        if verify_bearer(&bot.keys, authorization) {
            match &found {
                None => found = Some(bot.id.clone()),
                Some(first) => shared = Some((first.clone(), bot.id.clone())),
            }
        }
    }
    match shared {
        Some((first, second)) => Err(ApiError::Config(shared_key(&first, &second))),
        None => Ok(found),
    }
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
