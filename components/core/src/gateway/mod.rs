//! The Central PG (Duitku-compatible): the create-invoice call, and in [`notification`] the
//! PAID/FAILED callback it sends.

pub mod notification;

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{Auth, Gateway};
use crate::deposit::request::CreateDeposit;
use crate::http::body_excerpt;
use crate::ids::{DepositId, Reference};
use crate::platform::{HttpClient, OutboundRequest, TransportError};
use crate::signature::signed_headers;

/// The invoice the PG created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedInvoice {
    /// Gateway reference.
    pub reference: Reference,
    /// Where the user pays.
    pub payment_url: String,
}

/// Why no invoice was created; becomes the `detail` of the 502.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayFailure {
    /// No answer (refused, timed out, denied).
    Transport(TransportError),
    /// Non-2xx answer.
    Status {
        /// HTTP status.
        status: u16,
        /// Body excerpt.
        body: String,
    },
    /// 2xx answer without a usable reference and payment URL.
    Malformed {
        /// HTTP status.
        status: u16,
        /// What was wrong.
        reason: &'static str,
        /// Body excerpt.
        body: String,
    },
}

impl GatewayFailure {
    /// The `detail` object of the 502 response.
    pub fn detail(&self) -> Value {
        match self {
            Self::Transport(error) => json!({ "status": Value::Null, "reason": error.to_string() }),
            Self::Status { status, body } => {
                json!({ "status": status, "reason": "non-2xx response", "body": body })
            }
            Self::Malformed {
                status,
                reason,
                body,
            } => json!({ "status": status, "reason": reason, "body": body }),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InvoiceBody<'a> {
    order_id: &'a str,
    amount: u64,
    product_details: &'a str,
    email: &'a str,
    phone_number: &'a str,
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<String>,
}

/// Default product description when the bot sends none.
pub fn default_product_details(amount: u64) -> String {
    format!("Top up saldo Rp {amount}")
}

/// The signed create-invoice request.
pub fn invoice_request(
    auth: &Auth,
    gateway: &Gateway,
    deposit_id: &DepositId,
    create: &CreateDeposit,
    product_details: &str,
    now: u64,
) -> OutboundRequest {
    let body = serde_json::to_vec(&InvoiceBody {
        order_id: deposit_id.as_str(),
        amount: create.amount,
        product_details,
        email: create.email.as_deref().unwrap_or(""),
        phone_number: create.msisdn.as_deref().unwrap_or(""),
        user_id: &create.user_id,
        callback_url: gateway
            .public_base_url
            .as_ref()
            .map(|base| format!("{base}/internal/payment-callback")),
    })
    .unwrap_or_default();
    OutboundRequest {
        url: format!(
            "{}{}",
            gateway.central_pg_base_url, gateway.central_pg_create_path
        ),
        headers: signed_headers(auth, &body, now),
        body,
        timeout: gateway.central_pg_timeout,
    }
}

/// Sends the request and reads the invoice from the answer.
pub fn create_invoice(
    http: &dyn HttpClient,
    request: OutboundRequest,
) -> Result<CreatedInvoice, GatewayFailure> {
    let response = http.send(request).map_err(GatewayFailure::Transport)?;
    if !(200..300).contains(&response.status) {
        return Err(GatewayFailure::Status {
            status: response.status,
            body: body_excerpt(&response.body),
        });
    }
    parse_invoice(&response.body).map_err(|reason| GatewayFailure::Malformed {
        status: response.status,
        reason,
        body: body_excerpt(&response.body),
    })
}

/// Accepts `{reference, paymentUrl}` at the top level or under `data` (Duitku style, where a
/// `statusCode` other than `"00"` is a failure).
fn parse_invoice(body: &[u8]) -> Result<CreatedInvoice, &'static str> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "body is not JSON")?;
    for holder in [Some(&value), value.get("data")].into_iter().flatten() {
        if let Some(code) = holder.get("statusCode") {
            if code != "00" {
                return Err("statusCode is not \"00\"");
            }
        }
    }
    let holder = if value.get("reference").is_some() {
        &value
    } else {
        value.get("data").ok_or("no reference in response")?
    };
    let reference = holder
        .get("reference")
        .and_then(Value::as_str)
        .and_then(Reference::parse)
        .ok_or("reference missing or invalid")?;
    let payment_url = holder
        .get("paymentUrl")
        .and_then(Value::as_str)
        .filter(|u| (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 2048)
        .ok_or("paymentUrl missing or not an http(s) URL")?;
    Ok(CreatedInvoice {
        reference,
        payment_url: payment_url.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::OutboundResponse;
    use crate::signature::verify_signature;
    use crate::testing::{test_config, ScriptedHttp};

    fn create() -> CreateDeposit {
        CreateDeposit {
            user_id: "42".into(),
            amount: 50_000,
            msisdn: None,
            email: Some("a@b.co".into()),
            product_details: None,
            deposit_id: None,
        }
    }

    fn order() -> DepositId {
        DepositId::parse("DEP1").unwrap()
    }

    fn answer(status: u16, body: &str) -> Result<CreatedInvoice, GatewayFailure> {
        let http = ScriptedHttp::new(vec![Ok(OutboundResponse {
            status,
            body: body.as_bytes().to_vec(),
        })]);
        let request = invoice_request(
            test_config().auth().unwrap(),
            test_config().gateway().unwrap(),
            &order(),
            &create(),
            "p",
            7,
        );
        create_invoice(&http, request)
    }

    #[test]
    fn request_is_signed_over_the_exact_bytes() {
        let config = test_config();
        let mut gateway = config.gateway().unwrap().clone();
        gateway.public_base_url = Some("https://topup.example".into());
        let request = invoice_request(
            config.auth().unwrap(),
            &gateway,
            &order(),
            &create(),
            "Top up",
            1234,
        );
        assert_eq!(request.url, "http://pg.test/invoice/create");
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({"orderId":"DEP1","amount":50000,"productDetails":"Top up","email":"a@b.co",
                   "phoneNumber":"","userId":"42",
                   "callbackUrl":"https://topup.example/internal/payment-callback"})
        );
        let sig = &request
            .headers
            .iter()
            .find(|(k, _)| k == "x-signature")
            .unwrap()
            .1;
        assert!(verify_signature(
            [&config.auth().unwrap().shared_secret],
            &request.body,
            sig
        ));
        assert!(request
            .headers
            .contains(&("x-timestamp".into(), "1234".into())));
    }

    #[test]
    fn callback_url_only_with_public_base_url() {
        let request = invoice_request(
            test_config().auth().unwrap(),
            test_config().gateway().unwrap(),
            &order(),
            &create(),
            "p",
            1,
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert!(body.get("callbackUrl").is_none());
    }

    #[test]
    fn accepted_answers() {
        let top = answer(200, r#"{"reference":"R1","paymentUrl":"https://pay/1"}"#).unwrap();
        assert_eq!(top.reference.as_str(), "R1");
        let nested = answer(
            201,
            r#"{"statusCode":"00","data":{"reference":"R2","paymentUrl":"https://pay/2","statusCode":"00"}}"#,
        )
        .unwrap();
        assert_eq!(
            (nested.reference.as_str(), nested.payment_url.as_str()),
            ("R2", "https://pay/2")
        );
    }

    #[test]
    fn refused_answers() {
        let cases: &[(u16, &str, &str)] = &[
            (500, "boom", "non-2xx response"),
            (
                409,
                r#"{"message":"transaction is still in progress"}"#,
                "non-2xx response",
            ),
            (200, "<html>", "body is not JSON"),
            (
                200,
                r#"{"paymentUrl":"https://pay/1"}"#,
                "no reference in response",
            ),
            (
                200,
                r#"{"reference":"R1"}"#,
                "paymentUrl missing or not an http(s) URL",
            ),
            (
                200,
                r#"{"reference":"","paymentUrl":"https://p"}"#,
                "reference missing or invalid",
            ),
            (
                200,
                r#"{"reference":"R 1","paymentUrl":"https://p"}"#,
                "reference missing or invalid",
            ),
            (
                200,
                r#"{"reference":"R1","paymentUrl":"javascript:alert(1)"}"#,
                "paymentUrl missing or not an http(s) URL",
            ),
            (
                200,
                r#"{"statusCode":"01","data":{"reference":"R","paymentUrl":"https://p"}}"#,
                "statusCode is not \"00\"",
            ),
        ];
        for (status, body, reason) in cases {
            let failure = answer(*status, body).expect_err(body);
            let detail = failure.detail();
            assert_eq!(detail["status"], *status, "{body}");
            assert_eq!(detail["reason"], *reason, "{body}");
        }
    }

    #[test]
    fn transport_failures() {
        for error in [
            TransportError::Timeout,
            TransportError::ConnectionRefused,
            TransportError::Denied,
        ] {
            let http = ScriptedHttp::new(vec![Err(error.clone())]);
            let request = invoice_request(
                test_config().auth().unwrap(),
                test_config().gateway().unwrap(),
                &order(),
                &create(),
                "p",
                7,
            );
            let failure = create_invoice(&http, request).unwrap_err();
            assert_eq!(failure, GatewayFailure::Transport(error));
            assert!(failure.detail()["status"].is_null());
        }
    }
}
