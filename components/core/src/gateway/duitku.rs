//! Duitku POP: `createInvoice`, the form-urlencoded callback, `transactionStatus`.
//!
//! Duitku has two signature generations: current docs use HMAC-SHA256 keyed with the API key;
//! the official PHP SDK and older docs use MD5/SHA-256 over strings that end with the API key.
//! Which one an account gets is not documented, so the configuration selects it.

use md5::Md5;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::notification::{parse_amount, text};
use super::protocol::{
    checked_invoice, content_type_is, json_object, paid_needs_amount, reference_field,
    status_fields, CreatedInvoice, GatewayName, InvoiceOrder, NoticeStatus, PaymentGateway,
    PaymentNotice, StatusQuery,
};
use crate::config::{Duitku, DuitkuSignature};
use crate::error::{ApiError, ErrorCode};
use crate::http::Request;
use crate::ids::DepositId;
use crate::platform::{HttpMethod, OutboundRequest, OutboundResponse};
use crate::signature::{digest_matches, sign, verify_signature};

impl Duitku {
    /// Duitku keys transactions by `merchantOrderId` and its status API answers about the
    /// order's last one: a create after the deposit's first (one that took over a stalled
    /// create) sends `{depositId}.{attempt}` (no deposit id has a `.`), so the stalled
    /// create's transaction, perhaps handed out and paid, can still be asked about.
    pub fn order_id(&self, deposit_id: &DepositId, attempt: u64) -> String {
        if attempt > 1 {
            format!("{deposit_id}.{attempt}")
        } else {
            deposit_id.as_str().to_string()
        }
    }

    /// Hex signature of `parts` concatenated: HMAC keyed with the API key, or the legacy
    /// digest of the string followed by the API key.
    fn signature_of<D: Digest>(&self, parts: &[&str]) -> String {
        let message = parts.concat();
        match self.signature {
            DuitkuSignature::Hmac => sign(&self.api_key, message.as_bytes()),
            DuitkuSignature::Legacy => {
                let mut digest = D::new();
                digest.update(message.as_bytes());
                digest.update(self.api_key.expose());
                hex::encode(digest.finalize())
            }
        }
    }

    /// Whether `given` signs `parts` (the legacy form is MD5 for callbacks and status).
    fn signed(&self, parts: &[&str], given: &str) -> bool {
        let message = parts.concat();
        match self.signature {
            DuitkuSignature::Hmac => verify_signature([&self.api_key], message.as_bytes(), given),
            DuitkuSignature::Legacy => {
                let mut digest = Md5::new();
                digest.update(message.as_bytes());
                digest.update(self.api_key.expose());
                digest_matches(&digest.finalize(), given)
            }
        }
    }

    fn post_json(
        &self,
        path: &str,
        headers: Vec<(String, String)>,
        body: &Value,
    ) -> OutboundRequest {
        OutboundRequest {
            method: HttpMethod::Post,
            url: format!("{}{path}", self.base_url),
            headers: [
                ("content-type".to_string(), "application/json".to_string()),
                ("accept".to_string(), "application/json".to_string()),
            ]
            .into_iter()
            .chain(headers)
            .collect(),
            body: serde_json::to_vec(body).unwrap_or_default(),
            timeout: self.timeout,
        }
    }
}

/// The deposit a `merchantOrderId` belongs to: `{depositId}` or `{depositId}.{attempt}`
/// (see [`Duitku::order_id`]); `None` for anything else.
fn deposit_of(order_id: &str) -> Option<DepositId> {
    let id = match order_id.rsplit_once('.') {
        None => order_id,
        Some((id, attempt)) => {
            let canonical = attempt
                .parse::<u64>()
                .is_ok_and(|n| n > 1 && n.to_string() == attempt);
            if !canonical {
                return None;
            }
            id
        }
    };
    DepositId::parse(id)
}

impl PaymentGateway for Duitku {
    fn name(&self) -> GatewayName {
        GatewayName::Duitku
    }

    fn invoice_request(&self, order: &InvoiceOrder, now: u64) -> OutboundRequest {
        let timestamp = now.to_string();
        // Legacy request signature: SHA-256(merchantCode + timestamp + apiKey).
        let signature = self.signature_of::<Sha256>(&[&self.merchant_code, &timestamp]);
        let callback_url = order.callback_url(GatewayName::Duitku).unwrap_or_default();
        // Duitku requires email, callbackUrl and returnUrl; the configuration requires
        // public_base_url for Duitku, and a missing email is Duitku's 400, reported as a 502.
        let body = json!({
            "paymentAmount": order.amount,
            "merchantOrderId": self.order_id(order.deposit_id, order.attempt),
            "productDetails": order.product_details,
            "email": order.email.unwrap_or(""),
            "phoneNumber": order.phone.unwrap_or(""),
            "merchantUserInfo": order.user_id,
            "callbackUrl": callback_url,
            "returnUrl": order.public_base_url.unwrap_or(""),
            // Minutes; rounded down, so Duitku stops taking payment within `valid_for`.
            "expiryPeriod": (order.valid_for.as_secs() / 60).max(1),
        });
        self.post_json(
            "/api/merchant/createInvoice",
            vec![
                ("x-duitku-merchantcode".into(), self.merchant_code.clone()),
                ("x-duitku-timestamp".into(), timestamp),
                ("x-duitku-signature".into(), signature),
            ],
            &body,
        )
    }

    fn read_invoice(&self, body: &[u8]) -> Result<CreatedInvoice, &'static str> {
        let fields = json_object(body).map_err(|_| "body is not a JSON object")?;
        if fields.get("statusCode").is_some_and(|code| code != "00") {
            return Err("statusCode is not \"00\"");
        }
        checked_invoice(
            fields.get("reference").and_then(Value::as_str),
            fields.get("paymentUrl").and_then(Value::as_str),
        )
    }

    fn read_notice(&self, request: &Request) -> Result<PaymentNotice, ApiError> {
        if !content_type_is(request, "application/x-www-form-urlencoded")? {
            return Err(ApiError::UnsupportedMediaType);
        }
        let fields = form_fields(&request.body)?;
        let field = |name: &'static str| text(&fields, name);
        let merchant_code = field("merchantCode")?.unwrap_or_default();
        let amount = field("amount")?.unwrap_or_default();
        let order_id = field("merchantOrderId")?.unwrap_or_default();
        let signature = field("signature")?.ok_or(ApiError::GatewayProof("signature"))?;
        // The signed string uses `amount` exactly as received.
        if !self.signed(&[&merchant_code, &amount, &order_id], &signature) {
            return Err(ApiError::GatewayProof("signature"));
        }
        if merchant_code != self.merchant_code {
            return Err(ApiError::field(
                ErrorCode::InvalidCallback,
                "merchantCode",
                "merchantCode is not this merchant's",
            ));
        }
        let deposit_id = deposit_of(&order_id).ok_or_else(|| {
            ApiError::field(
                ErrorCode::InvalidCallback,
                "merchantOrderId",
                "merchantOrderId is missing or not one of this service's order ids",
            )
        })?;
        let result_code = field("resultCode")?;
        // Sources disagree on the other codes (01 failed or pending, 02 failed): only "00"
        // is paid, and a failure never undoes a payment.
        let status = match result_code.as_deref() {
            Some("00") => NoticeStatus::Paid,
            _ => NoticeStatus::Failed,
        };
        let amount = match field("amount")? {
            None => None,
            Some(raw) => Some(parse_amount("amount", raw)?),
        };
        paid_needs_amount(
            PaymentNotice {
                deposit_id: Some(deposit_id),
                reference: reference_field(&fields, "reference")?,
                status,
                result_code,
                amount,
                payment_method: field("paymentCode")?,
            },
            "amount",
        )
    }

    /// Duitku signs merchantCode, amount and merchantOrderId, not `resultCode`, and with no
    /// separator between them.
    fn signs_notices(&self) -> bool {
        false
    }

    fn asks_by_reference(&self) -> bool {
        false
    }

    fn status_request(&self, query: &StatusQuery, _: u64) -> Option<OutboundRequest> {
        let order_id = self.order_id(query.deposit_id, query.attempt);
        let order_id = order_id.as_str();
        // Current form HMAC(merchantCode + merchantOrderId) is unconfirmed (third-party code);
        // the legacy MD5(merchantCode + merchantOrderId + apiKey) is the PHP SDK's.
        let signature = self.signature_of::<Md5>(&[&self.merchant_code, order_id]);
        Some(self.post_json(
            "/api/merchant/transactionStatus",
            Vec::new(),
            &json!({
                "merchantCode": self.merchant_code,
                "merchantOrderId": order_id,
                "signature": signature,
            }),
        ))
    }

    fn read_status(&self, response: &OutboundResponse) -> Result<PaymentNotice, &'static str> {
        let fields = status_fields(response)?;
        let invalid = |_| "status answer has an invalid field";
        let status = match text(&fields, "statusCode").map_err(invalid)?.as_deref() {
            Some("00") => NoticeStatus::Paid,
            Some("01") => NoticeStatus::Pending,
            Some("02") => NoticeStatus::Failed,
            _ => return Err("statusCode is not 00, 01 or 02"),
        };
        let amount = match text(&fields, "amount").map_err(invalid)? {
            None => None,
            Some(raw) => Some(parse_amount("amount", raw).map_err(invalid)?),
        };
        let notice = PaymentNotice {
            deposit_id: text(&fields, "merchantOrderId")
                .map_err(invalid)?
                .and_then(|id| deposit_of(&id)),
            reference: reference_field(&fields, "reference").map_err(invalid)?,
            status,
            result_code: text(&fields, "statusCode").map_err(invalid)?,
            amount,
            payment_method: None,
        };
        paid_needs_amount(notice, "amount").map_err(|_| "a paid status without amount")
    }
}

/// The callback's form fields; a field sent twice is refused (it could hide a second value
/// from the signature check).
fn form_fields(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut fields = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        if fields
            .insert(name.into_owned(), Value::String(value.into_owned()))
            .is_some()
        {
            return Err(ApiError::field(
                ErrorCode::InvalidCallback,
                "body",
                "a form field is repeated",
            ));
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Secret;
    use crate::ids::Reference;

    fn duitku(signature: DuitkuSignature) -> Duitku {
        Duitku {
            base_url: "https://api-sandbox.duitku.com".into(),
            merchant_code: "DXXXX".into(),
            api_key: Secret::new("732B39FC61796845775D2C4FB05332AF"),
            signature,
            timeout: Duration::from_secs(10),
        }
    }

    fn callback(body: &str) -> Request {
        Request::new("POST", "/callback/duitku")
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body(body.as_bytes().to_vec())
    }

    // Vectors computed with openssl (the docs give none):
    //   printf 'DXXXX150000DEP1' | openssl dgst -sha256 -hmac 732B39FC61796845775D2C4FB05332AF
    //   printf 'DXXXX150000DEP1732B39FC61796845775D2C4FB05332AF' | openssl dgst -md5
    const HMAC_SIG: &str = "677c5f39b96d693a339d0e8ccb00034e81c52e7fb1c44b09b40ec9f70d163b86";
    const MD5_SIG: &str = "0cd9ffe3f0484b098b6d70450ef981a4";

    #[test]
    fn callback_with_either_signature_generation() {
        for (generation, sig) in [
            (DuitkuSignature::Hmac, HMAC_SIG),
            (DuitkuSignature::Legacy, MD5_SIG),
        ] {
            let body = format!(
                "merchantCode=DXXXX&amount=150000&merchantOrderId=DEP1&productDetail=Top+up\
                 &paymentCode=VC&resultCode=00&reference=DXXXX2024R1&signature={sig}"
            );
            let notice = duitku(generation).read_notice(&callback(&body)).unwrap();
            assert_eq!(notice.status, NoticeStatus::Paid);
            assert_eq!(notice.amount, Some(("150000".into(), Some(150_000))));
            assert_eq!(notice.deposit_id, DepositId::parse("DEP1"));
            assert_eq!(notice.reference, Reference::parse("DXXXX2024R1"));
            assert_eq!(notice.payment_method.as_deref(), Some("VC"));
            // The other generation's signature is refused.
            let other = match generation {
                DuitkuSignature::Hmac => DuitkuSignature::Legacy,
                DuitkuSignature::Legacy => DuitkuSignature::Hmac,
            };
            assert_eq!(
                duitku(other)
                    .read_notice(&callback(&body))
                    .unwrap_err()
                    .status(),
                401
            );
            // Any change to a signed field is refused.
            let tampered = body.replace("amount=150000", "amount=150001");
            let err = duitku(generation)
                .read_notice(&callback(&tampered))
                .unwrap_err();
            assert_eq!(err.status(), 401);
        }
    }

    #[test]
    fn malformed_callbacks_are_refused() {
        let d = duitku(DuitkuSignature::Hmac);
        let good = format!(
            "merchantCode=DXXXX&amount=150000&merchantOrderId=DEP1&resultCode=00&signature={HMAC_SIG}"
        );
        let json = Request::new("POST", "/").with_header("content-type", "application/json");
        assert_eq!(
            d.read_notice(&json.with_body(good.clone()))
                .unwrap_err()
                .status(),
            415
        );
        let repeated = format!("{good}&amount=1");
        assert_eq!(
            d.read_notice(&callback(&repeated)).unwrap_err().status(),
            400
        );
        let unsigned = "merchantCode=DXXXX&amount=150000&merchantOrderId=DEP1&resultCode=00";
        assert_eq!(
            d.read_notice(&callback(unsigned)).unwrap_err().status(),
            401
        );
        let failed = good.replace("resultCode=00", "resultCode=02");
        assert_eq!(
            d.read_notice(&callback(&failed)).unwrap().status,
            NoticeStatus::Failed
        );
    }

    #[test]
    fn create_request_is_signed_with_the_timestamp() {
        let id = DepositId::parse("DEP1").unwrap();
        let order = InvoiceOrder {
            deposit_id: &id,
            attempt: 0,
            amount: 150_000,
            product_details: "Top up",
            user_id: "42",
            email: Some("a@b.co"),
            phone: None,
            public_base_url: Some("https://topup.example"),
            valid_for: std::time::Duration::from_secs(86_400),
        };
        let request = duitku(DuitkuSignature::Hmac).invoice_request(&order, 1_700_000_000_000);
        assert_eq!(
            request.url,
            "https://api-sandbox.duitku.com/api/merchant/createInvoice"
        );
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            header("x-duitku-timestamp").as_deref(),
            Some("1700000000000")
        );
        assert_eq!(header("x-duitku-merchantcode").as_deref(), Some("DXXXX"));
        // printf 'DXXXX1700000000000' | openssl dgst -sha256 -hmac 732B39FC61796845775D2C4FB05332AF
        assert_eq!(
            header("x-duitku-signature").as_deref(),
            Some("9f2f8a87e42fbc4bb2c805886f414e41c68400b1a79739d20ddcfdb8861cbef3")
        );
        let legacy = duitku(DuitkuSignature::Legacy).invoice_request(&order, 1_700_000_000_000);
        // printf 'DXXXX1700000000000732B39FC61796845775D2C4FB05332AF' | openssl dgst -sha256
        assert!(legacy.headers.contains(&(
            "x-duitku-signature".into(),
            "de996c16ba86a7cf6acaae00e71cea188cd6b7d2b2d65fd3b7004fcbb4d5af1d".into()
        )));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["paymentAmount"], 150_000);
        assert_eq!(body["merchantOrderId"], "DEP1");
        assert_eq!(body["callbackUrl"], "https://topup.example/callback/duitku");
        let invoice = duitku(DuitkuSignature::Hmac)
            .read_invoice(
                br#"{"merchantCode":"DXXXX","reference":"DXXXX2024R1","paymentUrl":"https://app-sandbox.duitku.com/redirect_checkout?reference=DXXXX2024R1","statusCode":"00","statusMessage":"SUCCESS"}"#,
            )
            .unwrap();
        assert_eq!(invoice.reference.as_str(), "DXXXX2024R1");
        assert!(duitku(DuitkuSignature::Hmac)
            .read_invoice(br#"{"statusCode":"01","reference":"R","paymentUrl":"https://p"}"#)
            .is_err());
    }

    #[test]
    fn a_create_after_the_first_has_an_order_of_its_own() {
        let gateway = duitku(DuitkuSignature::Hmac);
        let id = DepositId::parse("DEP1").unwrap();
        assert_eq!(gateway.order_id(&id, 0), "DEP1");
        assert_eq!(gateway.order_id(&id, 1), "DEP1");
        assert_eq!(gateway.order_id(&id, 3), "DEP1.3");
        let reference = Reference::parse("R1").unwrap();
        let query = StatusQuery {
            deposit_id: &id,
            attempt: 3,
            reference: &reference,
        };
        let body: Value =
            serde_json::from_slice(&gateway.status_request(&query, 0).unwrap().body).unwrap();
        assert_eq!(body["merchantOrderId"], "DEP1.3");
        // Every order id this service sends belongs to its deposit, and nothing else does.
        for (order, deposit) in [
            ("DEP1", Some("DEP1")),
            ("DEP1.3", Some("DEP1")),
            ("D-3_x.12", Some("D-3_x")),
            ("DEP1.1", None),
            ("DEP1.0", None),
            ("DEP1.03", None),
            ("DEP1.", None),
            (".3", None),
            ("DEP1.3.3", None),
            ("DEP1.x", None),
            ("DEP1.+3", None),
        ] {
            assert_eq!(
                deposit_of(order),
                deposit.map(|d| DepositId::parse(d).unwrap()),
                "{order}"
            );
        }
    }

    #[test]
    fn status_query_and_answers() {
        let (id, reference) = (
            DepositId::parse("DEP1").unwrap(),
            Reference::parse("R1").unwrap(),
        );
        let query = StatusQuery {
            deposit_id: &id,
            attempt: 0,
            reference: &reference,
        };
        let request = duitku(DuitkuSignature::Legacy)
            .status_request(&query, 0)
            .unwrap();
        assert_eq!(
            request.url,
            "https://api-sandbox.duitku.com/api/merchant/transactionStatus"
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        // printf 'DXXXXDEP1732B39FC61796845775D2C4FB05332AF' | openssl dgst -md5
        assert_eq!(body["signature"], "08f10add8cfdc3bdf8760396ff6818f9");
        let answer = |code: &str| {
            duitku(DuitkuSignature::Hmac).read_status(&OutboundResponse {
                status: 200,
                body: format!(
                    r#"{{"merchantOrderId":"DEP1","reference":"R1","amount":"150000","fee":"0","statusCode":"{code}","statusMessage":"x"}}"#
                )
                .into_bytes(),
            })
        };
        assert_eq!(answer("00").unwrap().status, NoticeStatus::Paid);
        assert_eq!(
            answer("00").unwrap().amount,
            Some(("150000".into(), Some(150_000)))
        );
        assert_eq!(answer("01").unwrap().status, NoticeStatus::Pending);
        assert_eq!(answer("02").unwrap().status, NoticeStatus::Failed);
        assert!(answer("99").is_err());
    }
}
