//! Midtrans Snap: create a Snap transaction, the HTTP notification with `signature_key`, and
//! the GET status API. Both APIs authenticate with HTTP Basic (server key, empty password).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};

use super::notification::{parse_amount, text};
use super::protocol::{
    basic_auth, checked_invoice, content_type_is, deposit_id_field, json_object, paid_needs_amount,
    status_fields, CreatedInvoice, GatewayName, InvoiceOrder, NoticeStatus, PaymentGateway,
    PaymentNotice, StatusQuery,
};
use crate::config::Midtrans;
use crate::error::ApiError;
use crate::http::Request;
use crate::platform::{HttpMethod, OutboundRequest, OutboundResponse};
use crate::signature::digest_matches;

impl Midtrans {
    fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("accept".into(), "application/json".into()),
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), basic_auth(&self.server_key)),
        ]
    }

    /// Reads a notification or status body; `signature_key` is checked by the caller.
    fn notice(fields: &Map<String, Value>) -> Result<PaymentNotice, ApiError> {
        let status_code = text(fields, "status_code")?;
        let transaction_status = text(fields, "transaction_status")?.unwrap_or_default();
        let fraud = text(fields, "fraud_status")?;
        // Midtrans's success check: status_code 200, settlement, or capture accepted by the
        // fraud check (a challenged capture waits for review).
        let paid = status_code.as_deref() == Some("200")
            && (transaction_status == "settlement"
                || transaction_status == "capture"
                    && fraud.as_deref().is_none_or(|f| f == "accept"));
        let status = match transaction_status.as_str() {
            _ if paid => NoticeStatus::Paid,
            "deny" | "cancel" | "failure" => NoticeStatus::Failed,
            "expire" => NoticeStatus::Expired,
            // pending, challenged capture, authorize, refund, partial_refund: nothing to do.
            _ => NoticeStatus::Pending,
        };
        let amount = match text(fields, "gross_amount")? {
            None => None,
            Some(raw) => Some(parse_amount("gross_amount", raw)?),
        };
        paid_needs_amount(
            PaymentNotice {
                deposit_id: Some(deposit_id_field(fields, "order_id")?),
                // The notification carries no Snap token: the deposit's invoice is the one.
                reference: None,
                status,
                result_code: (!transaction_status.is_empty()).then_some(transaction_status),
                amount,
                payment_method: text(fields, "payment_type")?,
            },
            "gross_amount",
        )
    }

    /// `signature_key = hex(SHA512(order_id + status_code + gross_amount + server_key))`,
    /// over the fields exactly as received.
    fn signature_valid(&self, fields: &Map<String, Value>) -> Result<bool, ApiError> {
        let part = |name: &'static str| text(fields, name).map(Option::unwrap_or_default);
        let Some(given) = text(fields, "signature_key")? else {
            return Ok(false);
        };
        let mut digest = Sha512::new();
        for name in ["order_id", "status_code", "gross_amount"] {
            digest.update(part(name)?.as_bytes());
        }
        digest.update(self.server_key.expose());
        Ok(digest_matches(&digest.finalize(), &given))
    }
}

impl PaymentGateway for Midtrans {
    fn name(&self) -> GatewayName {
        GatewayName::Midtrans
    }

    fn invoice_request(&self, order: &InvoiceOrder, _: u64) -> OutboundRequest {
        let mut body = json!({
            "transaction_details": {
                "order_id": order.deposit_id.as_str(),
                "gross_amount": order.amount,
            },
            "item_details": [{
                "id": "topup",
                "price": order.amount,
                "quantity": 1,
                "name": order.product_details.chars().take(50).collect::<String>(),
            }],
        });
        let mut customer = Map::new();
        if let Some(email) = order.email {
            customer.insert("email".into(), json!(email));
        }
        if let Some(phone) = order.phone {
            customer.insert("phone".into(), json!(phone));
        }
        if !customer.is_empty() {
            body["customer_details"] = Value::Object(customer);
        }
        // The page may be opened for the first half of `valid_for` (Midtrans takes 5 minutes
        // at least), and a payment started there must end within the rest: the payment's
        // expiry counts from the moment the buyer starts it.
        let minutes = (order.valid_for.as_secs() / 60).max(2);
        let page = (minutes / 2).max(5);
        body["page_expiry"] = json!({ "duration": page, "unit": "minutes" });
        body["expiry"] =
            json!({ "duration": minutes.saturating_sub(page).max(1), "unit": "minutes" });
        let mut headers = self.headers();
        // Per-transaction notification URL, so the dashboard setting need not be touched.
        if let Some(url) = order.callback_url(GatewayName::Midtrans) {
            headers.push(("x-override-notification".into(), url));
        }
        OutboundRequest {
            method: HttpMethod::Post,
            url: format!("{}/snap/v1/transactions", self.snap_url),
            headers,
            body: serde_json::to_vec(&body).unwrap_or_default(),
            timeout: self.timeout,
        }
    }

    fn read_invoice(&self, body: &[u8]) -> Result<CreatedInvoice, &'static str> {
        let fields = json_object(body).map_err(|_| "body is not a JSON object")?;
        checked_invoice(
            fields.get("token").and_then(Value::as_str),
            fields.get("redirect_url").and_then(Value::as_str),
        )
    }

    fn read_notice(&self, request: &Request) -> Result<PaymentNotice, ApiError> {
        if !content_type_is(request, "application/json")? {
            return Err(ApiError::UnsupportedMediaType);
        }
        let fields = json_object(&request.body)?;
        if !self.signature_valid(&fields)? {
            return Err(ApiError::GatewayProof("signature_key"));
        }
        Self::notice(&fields)
    }

    /// Midtrans signs order_id, status_code and gross_amount, not `transaction_status` or
    /// `fraud_status` (a cancel has status_code 200 too).
    fn signs_notices(&self) -> bool {
        false
    }

    fn asks_by_reference(&self) -> bool {
        false
    }

    fn status_request(&self, query: &StatusQuery, _: u64) -> Option<OutboundRequest> {
        Some(OutboundRequest {
            method: HttpMethod::Get,
            url: format!("{}/v2/{}/status", self.api_url, query.deposit_id),
            headers: self.headers(),
            body: Vec::new(),
            timeout: self.timeout,
        })
    }

    fn read_status(&self, response: &OutboundResponse) -> Result<PaymentNotice, &'static str> {
        // A Snap transaction is unknown (404) until the buyer picks a payment method; the
        // API may also say so with a 200 whose body has status_code "404".
        if response.status == 404 {
            return Ok(PaymentNotice::pending());
        }
        let fields = status_fields(response)?;
        if fields.get("status_code").and_then(Value::as_str) == Some("404") {
            return Ok(PaymentNotice::pending());
        }
        Self::notice(&fields).map_err(|_| "status answer is not valid")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Secret;
    use crate::ids::{DepositId, Reference};

    fn midtrans() -> Midtrans {
        Midtrans {
            snap_url: "https://app.sandbox.midtrans.com".into(),
            api_url: "https://api.sandbox.midtrans.com".into(),
            server_key: Secret::new("SB-Mid-server-TEST"),
            timeout: Duration::from_secs(10),
        }
    }

    // Computed with openssl (the docs describe the formula without a vector):
    //   printf 'DEP1200150000.00SB-Mid-server-TEST' | openssl dgst -sha512
    const SIGNATURE: &str = "0b4e1779126ca225454c6fae427d64f0b892815fa752a10b8d4dedf3c7b3e2638c8251a5b358daa2a636fec85066e813287f70c285b52dd4c05787aa9ee63328";

    fn notification(status: &str, code: &str, signature: &str) -> Request {
        let body = format!(
            r#"{{"transaction_time":"2026-11-25 10:00:00","transaction_status":"{status}","transaction_id":"t-1","status_message":"ok","status_code":"{code}","signature_key":"{signature}","payment_type":"bank_transfer","order_id":"DEP1","merchant_id":"M1","gross_amount":"150000.00","fraud_status":"accept","currency":"IDR"}}"#
        );
        Request::new("POST", "/callback/midtrans")
            .with_header("content-type", "application/json")
            .with_body(body.into_bytes())
    }

    #[test]
    fn settlement_with_a_valid_signature_is_paid() {
        let notice = midtrans()
            .read_notice(&notification("settlement", "200", SIGNATURE))
            .unwrap();
        assert_eq!(notice.status, NoticeStatus::Paid);
        assert_eq!(notice.deposit_id, DepositId::parse("DEP1"));
        assert_eq!(notice.amount, Some(("150000.00".into(), Some(150_000))));
        assert_eq!(notice.payment_method.as_deref(), Some("bank_transfer"));
        // Upper-case hex is the same signature.
        assert!(midtrans()
            .read_notice(&notification(
                "settlement",
                "200",
                &SIGNATURE.to_uppercase()
            ))
            .is_ok());
    }

    #[test]
    fn forged_or_tampered_notifications_are_refused() {
        let m = midtrans();
        for request in [
            notification("settlement", "200", ""),
            notification("settlement", "200", &"0".repeat(128)),
            notification("settlement", "201", SIGNATURE),
        ] {
            assert_eq!(m.read_notice(&request).unwrap_err().status(), 401);
        }
        let tampered = notification("settlement", "200", SIGNATURE);
        let body = String::from_utf8(tampered.body.clone())
            .unwrap()
            .replace("150000.00", "1500000.00");
        assert_eq!(
            m.read_notice(&tampered.with_body(body.into_bytes()))
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn statuses_map_to_notices() {
        let m = midtrans();
        let status_of = |transaction: &str| {
            let fields: Map<String, Value> = serde_json::from_str(&format!(
                r#"{{"order_id":"DEP1","status_code":"200","gross_amount":"150000.00","transaction_status":"{transaction}","fraud_status":"accept"}}"#
            ))
            .unwrap();
            Midtrans::notice(&fields).unwrap().status
        };
        assert_eq!(status_of("settlement"), NoticeStatus::Paid);
        assert_eq!(status_of("capture"), NoticeStatus::Paid);
        assert_eq!(status_of("pending"), NoticeStatus::Pending);
        assert_eq!(status_of("expire"), NoticeStatus::Expired);
        assert_eq!(status_of("deny"), NoticeStatus::Failed);
        assert_eq!(status_of("refund"), NoticeStatus::Pending);
        let challenged: Map<String, Value> = serde_json::from_str(
            r#"{"order_id":"DEP1","status_code":"200","gross_amount":"1.00","transaction_status":"capture","fraud_status":"challenge"}"#,
        )
        .unwrap();
        assert_eq!(
            Midtrans::notice(&challenged).unwrap().status,
            NoticeStatus::Pending
        );
        let (id, reference) = (
            DepositId::parse("DEP1").unwrap(),
            Reference::parse("tok").unwrap(),
        );
        let request = m
            .status_request(
                &StatusQuery {
                    deposit_id: &id,
                    attempt: 0,
                    reference: &reference,
                },
                0,
            )
            .unwrap();
        assert_eq!(request.method, HttpMethod::Get);
        assert_eq!(
            request.url,
            "https://api.sandbox.midtrans.com/v2/DEP1/status"
        );
        // printf 'SB-Mid-server-TEST:' | base64
        assert!(request.headers.contains(&(
            "authorization".into(),
            "Basic U0ItTWlkLXNlcnZlci1URVNUOg==".into()
        )));
        let not_found = OutboundResponse {
            status: 404,
            body: Vec::new(),
        };
        assert_eq!(
            m.read_status(&not_found).unwrap().status,
            NoticeStatus::Pending
        );
    }

    #[test]
    fn create_request_and_answer() {
        let id = DepositId::parse("DEP1").unwrap();
        let order = InvoiceOrder {
            deposit_id: &id,
            attempt: 0,
            amount: 150_000,
            product_details: "Top up",
            user_id: "42",
            email: None,
            phone: None,
            public_base_url: Some("https://topup.example"),
            valid_for: std::time::Duration::from_secs(86_400),
        };
        let request = midtrans().invoice_request(&order, 0);
        assert_eq!(
            request.url,
            "https://app.sandbox.midtrans.com/snap/v1/transactions"
        );
        assert!(request.headers.contains(&(
            "x-override-notification".into(),
            "https://topup.example/callback/midtrans".into()
        )));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body["transaction_details"],
            json!({"order_id":"DEP1","gross_amount":150000})
        );
        let invoice = midtrans()
            .read_invoice(br#"{"token":"66e4fa55-fdac-4ef9-91b5-733b97d1b862","redirect_url":"https://app.sandbox.midtrans.com/snap/v2/vtweb/66e4fa55-fdac-4ef9-91b5-733b97d1b862"}"#)
            .unwrap();
        assert_eq!(
            invoice.reference.as_str(),
            "66e4fa55-fdac-4ef9-91b5-733b97d1b862"
        );
    }
}
