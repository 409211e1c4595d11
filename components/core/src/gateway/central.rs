//! The Central PG (Duitku-compatible, run by the seller): create-invoice call signed with the
//! shared secret, PAID/FAILED callback signed the same way. It has no status query.

use serde::Serialize;
use serde_json::Value;

use super::notification::PaymentCallback;
use super::protocol::{
    checked_invoice, one_header, CreatedInvoice, GatewayName, InvoiceOrder, PaymentGateway,
    PaymentNotice, StatusQuery,
};
use crate::config::{Auth, Gateway, SignatureScheme};
use crate::error::{ApiError, ErrorCode};
use crate::http::Request;
use crate::platform::{HttpMethod, OutboundRequest, OutboundResponse};
use crate::signature::{signed_content, signed_headers, verify_signature};

/// The Central PG adapter: its secrets and its create call's settings.
pub struct Central<'a> {
    /// Secrets that sign the create call and verify callbacks.
    pub auth: &'a Auth,
    /// Where the create call goes.
    pub gateway: &'a Gateway,
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

/// Checks a callback's `X-Signature` (HMAC-SHA256 of the raw body, or under the timestamped
/// scheme of `{X-Timestamp}.{X-Nonce}.{body}`) against the inbound secrets. The callback route
/// runs this before its replay checks, then parses the body.
pub fn authenticate(auth: &Auth, request: &Request) -> Result<(), ApiError> {
    let signature = one_header(request, "x-signature")?.ok_or(ApiError::InvalidSignature)?;
    let (timestamp, nonce) = match auth.scheme {
        SignatureScheme::Body => ("", ""),
        SignatureScheme::Timestamped => (
            one_header(request, "x-timestamp")?
                .ok_or(ApiError::TimestampRejected("X-Timestamp is required"))?,
            one_header(request, "x-nonce")?.ok_or_else(|| {
                ApiError::field(
                    ErrorCode::InvalidNonce,
                    "X-Nonce",
                    "X-Nonce is required by the timestamped signature",
                )
            })?,
        ),
    };
    let content = signed_content(auth.scheme, timestamp, nonce, &request.body);
    if !verify_signature(auth.inbound_secrets(), &content, signature) {
        return Err(ApiError::InvalidSignature);
    }
    Ok(())
}

impl PaymentGateway for Central<'_> {
    fn name(&self) -> GatewayName {
        GatewayName::Central
    }

    fn invoice_request(&self, order: &InvoiceOrder, now: u64) -> OutboundRequest {
        let body = serde_json::to_vec(&InvoiceBody {
            order_id: order.deposit_id.as_str(),
            amount: order.amount,
            product_details: order.product_details,
            email: order.email.unwrap_or(""),
            phone_number: order.phone.unwrap_or(""),
            user_id: order.user_id,
            callback_url: order.callback_url(GatewayName::Central),
        })
        .unwrap_or_default();
        OutboundRequest {
            method: HttpMethod::Post,
            url: format!(
                "{}{}",
                self.gateway.central_pg_base_url, self.gateway.central_pg_create_path
            ),
            // A nonce unique per create attempt (signed under the timestamped scheme).
            headers: signed_headers(
                self.auth,
                &body,
                now,
                &format!("{}.{now}", order.deposit_id),
            ),
            body,
            timeout: self.gateway.central_pg_timeout,
        }
    }

    fn read_invoice(&self, body: &[u8]) -> Result<CreatedInvoice, &'static str> {
        read_invoice(body)
    }

    fn read_notice(&self, request: &Request) -> Result<PaymentNotice, ApiError> {
        authenticate(self.auth, request)?;
        PaymentCallback::parse(&request.body).map(PaymentNotice::from)
    }

    fn signs_notices(&self) -> bool {
        true
    }

    fn asks_by_reference(&self) -> bool {
        false
    }

    fn status_request(&self, _: &StatusQuery, _: u64) -> Option<OutboundRequest> {
        None
    }

    fn read_status(&self, _: &OutboundResponse) -> Result<PaymentNotice, &'static str> {
        Err("the Central PG has no status query")
    }
}

/// Accepts `{reference, paymentUrl}` at the top level or under `data` (Duitku style, where a
/// `statusCode` other than `"00"` is a failure).
pub(super) fn read_invoice(body: &[u8]) -> Result<CreatedInvoice, &'static str> {
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
    checked_invoice(
        holder.get("reference").and_then(Value::as_str),
        holder.get("paymentUrl").and_then(Value::as_str),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::NoticeStatus;
    use crate::signature::sign;
    use crate::testing::test_config;

    #[test]
    fn notice_needs_the_signature_over_the_exact_body() {
        let config = test_config();
        let central = Central {
            auth: config.auth().unwrap(),
            gateway: config.gateway().unwrap(),
        };
        let body = br#"{"orderId":"DEP1","status":"PAID","duitkuData":{"amount":"5000"}}"#;
        let signature = sign(&config.auth().unwrap().shared_secret, body);
        let request = Request::new("POST", "/internal/payment-callback")
            .with_header("x-signature", &signature)
            .with_body(body.to_vec());
        let notice = central.read_notice(&request).unwrap();
        assert_eq!(notice.status, NoticeStatus::Paid);
        assert_eq!(notice.amount, Some(("5000".into(), Some(5000))));

        let tampered = String::from_utf8_lossy(body).replacen("5000", "9000", 1);
        let forged = request.clone().with_body(tampered.into_bytes());
        assert_eq!(central.read_notice(&forged).unwrap_err().status(), 401);
        let unsigned = Request::new("POST", "/").with_body(body.to_vec());
        assert_eq!(central.read_notice(&unsigned).unwrap_err().status(), 401);
        assert!(central
            .status_request(
                &StatusQuery {
                    deposit_id: &crate::ids::DepositId::parse("DEP1").unwrap(),
                    attempt: 0,
                    reference: &crate::ids::Reference::parse("R1").unwrap(),
                },
                0
            )
            .is_none());
    }
}
