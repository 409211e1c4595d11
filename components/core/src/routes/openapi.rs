//! `GET /openapi.json`: the API's OpenAPI 3.1 document. Public, and reads no variable and no
//! store, so its component needs neither (the document is embedded by the component).

use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::routes::route::CORS_ALLOW_HEADERS;

/// The route's path (as in spin.toml).
pub const PATH: &str = "/openapi.json";

/// Value of `Allow` / `Access-Control-Allow-Methods`.
pub const ALLOW: &str = "GET, HEAD, OPTIONS";

/// Serves `document` on GET and HEAD; any origin may read it (it holds nothing secret).
pub fn handle(request: &Request, document: &'static str) -> Response {
    let response = match request.method.as_str() {
        "GET" | "HEAD" => Response {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: document.as_bytes().to_vec(),
        },
        "OPTIONS" => Response::empty(204)
            .with_header("access-control-allow-methods", ALLOW)
            .with_header("access-control-allow-headers", CORS_ALLOW_HEADERS)
            .with_header("access-control-max-age", "600"),
        _ => {
            eprintln!(
                "{} {} -> 405 METHOD_NOT_ALLOWED",
                request.method, request.path
            );
            ApiError::MethodNotAllowed { allow: ALLOW }.into_response()
        }
    };
    response.with_header("access-control-allow-origin", "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"openapi":"3.1.0"}"#;

    #[test]
    fn get_and_head_serve_the_document_as_json() {
        for method in ["GET", "HEAD"] {
            let response = handle(&Request::new(method, PATH), DOC);
            assert_eq!(response.status, 200);
            assert_eq!(
                response.header("content-type"),
                Some("application/json; charset=utf-8")
            );
            assert_eq!(response.body, DOC.as_bytes());
        }
    }

    #[test]
    fn preflight_and_other_methods() {
        let preflight = handle(&Request::new("OPTIONS", PATH), DOC);
        assert_eq!(preflight.status, 204);
        assert_eq!(
            preflight.header("access-control-allow-methods"),
            Some(ALLOW)
        );
        for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE", "get"] {
            let refused = handle(&Request::new(method, PATH), DOC);
            assert_eq!(refused.status, 405, "{method}");
            assert_eq!(refused.header("allow"), Some(ALLOW));
            let body = refused.json_body();
            assert_eq!(body["ok"], false);
            assert_eq!(body["error"], "METHOD_NOT_ALLOWED");
            assert_eq!(body["detail"]["allow"], ALLOW);
        }
    }
}
