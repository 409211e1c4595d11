//! Xendit Invoices: create an invoice, the invoice callback authenticated by the
//! `x-callback-token` header (invoices have no body signature), and get invoice by id.

use serde_json::{json, Map, Value};

use super::notification::{parse_amount, text};
use super::protocol::{
    basic_auth, checked_invoice, content_type_is, deposit_id_field, json_object, one_header,
    paid_needs_amount, reference_field, status_fields, CreatedInvoice, GatewayName, InvoiceOrder,
    NoticeStatus, PaymentGateway, PaymentNotice, StatusQuery,
};
use crate::config::Xendit;
use crate::error::{ApiError, ErrorCode};
use crate::http::Request;
use crate::platform::{HttpMethod, OutboundRequest, OutboundResponse};
use crate::signature::token_matches;

impl Xendit {
    fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("accept".into(), "application/json".into()),
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), basic_auth(&self.secret_key)),
        ]
    }

    /// Reads an Invoice object (callback body or get-invoice answer).
    fn notice(fields: &Map<String, Value>) -> Result<PaymentNotice, ApiError> {
        let status_text = text(fields, "status")?.unwrap_or_default();
        let status = match status_text.as_str() {
            "PAID" | "SETTLED" => NoticeStatus::Paid,
            "EXPIRED" => NoticeStatus::Expired,
            "PENDING" => NoticeStatus::Pending,
            _ => {
                return Err(ApiError::field(
                    ErrorCode::InvalidCallback,
                    "status",
                    "status must be PENDING, PAID, SETTLED or EXPIRED",
                ))
            }
        };
        // What was paid when it says so, else the invoice's amount.
        let amount = match text(fields, "paid_amount")?.or(text(fields, "amount")?) {
            None => None,
            Some(raw) => Some(parse_amount("paid_amount", raw)?),
        };
        let method = text(fields, "payment_channel")?.or(text(fields, "payment_method")?);
        paid_needs_amount(
            PaymentNotice {
                deposit_id: Some(deposit_id_field(fields, "external_id")?),
                reference: reference_field(fields, "id")?,
                status,
                result_code: Some(status_text),
                amount,
                payment_method: method,
            },
            "paid_amount",
        )
    }
}

impl PaymentGateway for Xendit {
    fn name(&self) -> GatewayName {
        GatewayName::Xendit
    }

    fn invoice_request(&self, order: &InvoiceOrder, _: u64) -> OutboundRequest {
        let mut body = json!({
            "external_id": order.deposit_id.as_str(),
            "amount": order.amount,
            "description": order.product_details,
            "currency": "IDR",
            "invoice_duration": order.valid_for.as_secs().max(1),
        });
        if let Some(email) = order.email {
            body["payer_email"] = json!(email);
        }
        OutboundRequest {
            method: HttpMethod::Post,
            url: format!("{}/v2/invoices", self.base_url),
            headers: self.headers(),
            body: serde_json::to_vec(&body).unwrap_or_default(),
            timeout: self.timeout,
        }
    }

    fn read_invoice(&self, body: &[u8]) -> Result<CreatedInvoice, &'static str> {
        let fields = json_object(body).map_err(|_| "body is not a JSON object")?;
        checked_invoice(
            fields.get("id").and_then(Value::as_str),
            fields.get("invoice_url").and_then(Value::as_str),
        )
    }

    fn read_notice(&self, request: &Request) -> Result<PaymentNotice, ApiError> {
        let token = one_header(request, "x-callback-token")?
            .ok_or(ApiError::GatewayProof("x-callback-token"))?;
        if !token_matches(&self.callback_token, token) {
            return Err(ApiError::GatewayProof("x-callback-token"));
        }
        if !content_type_is(request, "application/json")? {
            return Err(ApiError::UnsupportedMediaType);
        }
        Self::notice(&json_object(&request.body)?)
    }

    /// An invoice callback carries a static token, no signature: anyone who saw one
    /// notice's headers can write any other.
    fn signs_notices(&self) -> bool {
        false
    }

    fn asks_by_reference(&self) -> bool {
        true
    }

    fn status_request(&self, query: &StatusQuery, _: u64) -> Option<OutboundRequest> {
        Some(OutboundRequest {
            method: HttpMethod::Get,
            url: format!("{}/v2/invoices/{}", self.base_url, query.reference),
            headers: self.headers(),
            body: Vec::new(),
            timeout: self.timeout,
        })
    }

    fn read_status(&self, response: &OutboundResponse) -> Result<PaymentNotice, &'static str> {
        let fields = status_fields(response)?;
        Self::notice(&fields).map_err(|_| "status answer is not valid")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Secret;
    use crate::ids::{DepositId, Reference};

    fn xendit() -> Xendit {
        Xendit {
            base_url: "https://api.xendit.co".into(),
            secret_key: Secret::new("xnd_development_KEY"),
            callback_token: Secret::new("cb-token-123"),
            timeout: Duration::from_secs(10),
        }
    }

    fn callback(token: Option<&str>, status: &str) -> Request {
        let body = format!(
            r#"{{"id":"579c8d61f23fa4ca35e52da4","external_id":"DEP1","user_id":"u1","status":"{status}","amount":150000,"paid_amount":150000,"payment_method":"BANK_TRANSFER","payment_channel":"BCA","currency":"IDR"}}"#
        );
        let request = Request::new("POST", "/callback/xendit")
            .with_header("content-type", "application/json")
            .with_body(body.into_bytes());
        match token {
            Some(token) => request.with_header("x-callback-token", token),
            None => request,
        }
    }

    #[test]
    fn token_decides() {
        let x = xendit();
        let notice = x
            .read_notice(&callback(Some("cb-token-123"), "PAID"))
            .unwrap();
        assert_eq!(notice.status, NoticeStatus::Paid);
        assert_eq!(notice.deposit_id, DepositId::parse("DEP1"));
        assert_eq!(
            notice.reference,
            Reference::parse("579c8d61f23fa4ca35e52da4")
        );
        assert_eq!(notice.amount, Some(("150000".into(), Some(150_000))));
        assert_eq!(notice.payment_method.as_deref(), Some("BCA"));
        for token in [None, Some(""), Some("cb-token-12"), Some("cb-token-1234")] {
            assert_eq!(
                x.read_notice(&callback(token, "PAID"))
                    .unwrap_err()
                    .status(),
                401,
                "{token:?}"
            );
        }
        let twice = callback(Some("cb-token-123"), "PAID").with_header("x-callback-token", "x");
        assert_eq!(x.read_notice(&twice).unwrap_err().status(), 400);
        let expired = x
            .read_notice(&callback(Some("cb-token-123"), "EXPIRED"))
            .unwrap();
        assert_eq!(expired.status, NoticeStatus::Expired);
        assert!(x
            .read_notice(&callback(Some("cb-token-123"), "WHAT"))
            .is_err());
    }

    #[test]
    fn create_and_get_invoice() {
        let x = xendit();
        let id = DepositId::parse("DEP1").unwrap();
        let order = InvoiceOrder {
            deposit_id: &id,
            attempt: 0,
            amount: 150_000,
            product_details: "Top up",
            user_id: "42",
            email: Some("a@b.co"),
            phone: None,
            public_base_url: None,
            valid_for: std::time::Duration::from_secs(86_400),
        };
        let request = x.invoice_request(&order, 0);
        assert_eq!(request.url, "https://api.xendit.co/v2/invoices");
        // printf 'xnd_development_KEY:' | base64
        assert!(request.headers.contains(&(
            "authorization".into(),
            "Basic eG5kX2RldmVsb3BtZW50X0tFWTo=".into()
        )));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["external_id"], "DEP1");
        assert_eq!(body["amount"], 150_000);
        let invoice = x
            .read_invoice(br#"{"id":"579c8d61f23fa4ca35e52da4","external_id":"DEP1","status":"PENDING","amount":150000,"invoice_url":"https://checkout-staging.xendit.co/web/579c8d61f23fa4ca35e52da4"}"#)
            .unwrap();
        assert_eq!(invoice.reference.as_str(), "579c8d61f23fa4ca35e52da4");
        let reference = invoice.reference;
        let query = x
            .status_request(
                &StatusQuery {
                    deposit_id: &id,
                    attempt: 0,
                    reference: &reference,
                },
                0,
            )
            .unwrap();
        assert_eq!(query.method, HttpMethod::Get);
        assert_eq!(
            query.url,
            "https://api.xendit.co/v2/invoices/579c8d61f23fa4ca35e52da4"
        );
        let answer = x
            .read_status(&OutboundResponse {
                status: 200,
                body: br#"{"id":"579c8d61f23fa4ca35e52da4","external_id":"DEP1","status":"SETTLED","amount":150000}"#.to_vec(),
            })
            .unwrap();
        assert_eq!(answer.status, NoticeStatus::Paid);
    }
}
