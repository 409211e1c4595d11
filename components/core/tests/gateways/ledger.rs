//! Gateways that keep a ledger: each create makes a transaction with a reference of its own
//! (as the real gateways mint them), the status APIs answer from it, and notices are signed
//! from it. The create rules are the real ones: Midtrans accepts an order id once, Xendit
//! makes a new invoice for every create of one `external_id`, Duitku hands a pending
//! transaction back to a second create of its order id.

use std::sync::Mutex;

use crate::common::*;
use crate::support::{DUITKU_KEY, MIDTRANS_KEY, TRIPAY_PRIVATE, XENDIT_TOKEN};
use md5::Md5;
use sha2::{Digest, Sha512};
use topup_core::testing::test_variables;

/// Where a transaction stands at its gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the buyer.
    Pending,
    /// Paid in full.
    Paid,
    /// A payment attempt was denied (Midtrans: the buyer may try again in the same page).
    Denied,
    /// Expired unpaid.
    Expired,
}

/// One transaction a create made.
#[derive(Debug, Clone)]
pub struct Txn {
    /// `duitku`, `midtrans`, `xendit` or `tripay`.
    pub gateway: &'static str,
    /// The order id the create sent.
    pub order: String,
    /// The gateway's reference (Snap token, invoice id, …).
    pub reference: String,
    /// The amount billed.
    pub amount: u64,
    /// Where it stands.
    pub state: State,
}

/// Every transaction, in the order they were made.
#[derive(Default)]
pub struct Ledger {
    /// The transactions.
    pub txns: Vec<Txn>,
    /// What Tripay charges the buyer on top (its `fee_customer`).
    pub tripay_fee: u64,
}

/// A ledger shared with the platform's HTTP handler.
pub type Shared = Arc<Mutex<Ledger>>;

impl Ledger {
    /// The transaction with `reference`.
    pub fn by_reference(&self, reference: &str) -> Option<&Txn> {
        self.txns.iter().find(|t| t.reference == reference)
    }

    /// The last transaction of `order` at `gateway` (what a status query by order id sees).
    pub fn latest(&self, gateway: &str, order: &str) -> Option<&Txn> {
        self.txns
            .iter()
            .rev()
            .find(|t| t.gateway == gateway && t.order == order)
    }

    /// Sets a transaction's state.
    pub fn set(&mut self, reference: &str, state: State) {
        if let Some(t) = self.txns.iter_mut().find(|t| t.reference == reference) {
            t.state = state;
        }
    }

    /// The buyer pays `reference` with `amount` (what the gateway then reports).
    pub fn pay_with(&mut self, reference: &str, amount: u64) {
        if let Some(t) = self.txns.iter_mut().find(|t| t.reference == reference) {
            t.state = State::Paid;
            t.amount = amount;
        }
    }

    /// The gateway no longer knows `reference` (its status API answers 404).
    pub fn forget(&mut self, reference: &str) {
        self.txns.retain(|t| t.reference != reference);
    }

    fn mint(&mut self, gateway: &'static str, prefix: &str, order: &str, amount: u64) -> String {
        let reference = format!("{prefix}{}", self.txns.len() + 1);
        self.txns.push(Txn {
            gateway,
            order: order.to_string(),
            reference: reference.clone(),
            amount,
            state: State::Pending,
        });
        reference
    }
}

/// Every gateway enabled (Duitku with HMAC signatures), answering from `ledger`.
pub fn ledger_platform(ledger: &Shared) -> TestPlatform {
    ledger_platform_signing(ledger, "hmac")
}

/// Every gateway enabled, Duitku with `duitku_signature`, answering from `ledger`.
pub fn ledger_platform_signing(ledger: &Shared, duitku_signature: &str) -> TestPlatform {
    let mut p = TestPlatform::new();
    p.variables = test_variables()
        .with("gateways_enabled", "central,duitku,midtrans,xendit,tripay")
        .with("public_base_url", "https://topup.example")
        .with("duitku_merchant_code", "DXXXX")
        .with("duitku_api_key", DUITKU_KEY)
        .with("duitku_signature", duitku_signature)
        .with("midtrans_server_key", MIDTRANS_KEY)
        .with("xendit_secret_key", "xnd_development_key")
        .with("xendit_callback_token", XENDIT_TOKEN)
        .with("tripay_merchant_code", "T0001")
        .with("tripay_api_key", "DEV-key")
        .with("tripay_private_key", TRIPAY_PRIVATE);
    p.http.set_handler(upstreams(ledger));
    p
}

/// The gateways answering from `ledger`; the Central PG and the bot as in
/// [`happy_upstreams`].
pub fn upstreams(
    ledger: &Shared,
) -> impl Fn(&OutboundRequest) -> Result<OutboundResponse, TransportError> + Send + 'static {
    let ledger = ledger.clone();
    move |request| {
        let mut ledger = ledger.lock().unwrap();
        answer(&mut ledger, request).unwrap_or_else(|| happy_upstreams(request))
    }
}

fn json_answer(status: u16, body: Value) -> Result<OutboundResponse, TransportError> {
    Ok(OutboundResponse {
        status,
        body: body.to_string().into_bytes(),
    })
}

/// The gateways' answers; `None` for a request to anyone else.
fn answer(
    ledger: &mut Ledger,
    request: &OutboundRequest,
) -> Option<Result<OutboundResponse, TransportError>> {
    let url = request.url.as_str();
    let body = || serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    if url == "https://api-sandbox.duitku.com/api/merchant/createInvoice" {
        let b = body();
        let order = text(&b["merchantOrderId"]);
        let amount = b["paymentAmount"].as_u64().unwrap_or(0);
        // Duitku keys transactions by order id: a second create of one still pending gets it
        // back ("Amount is different" when the amount is not its own); otherwise a new one.
        let pending = ledger
            .latest("duitku", &order)
            .filter(|t| t.state == State::Pending)
            .map(|t| (t.reference.clone(), t.amount));
        let reference = match pending {
            Some((_, billed)) if billed != amount => {
                return Some(json_answer(400, json!({"Message": "Amount is different"})));
            }
            Some((reference, _)) => reference,
            None => ledger.mint("duitku", "DK", &order, amount),
        };
        return Some(json_answer(
            200,
            json!({"merchantCode": "DXXXX", "reference": reference,
                "paymentUrl": format!("https://pay.duitku.test/{reference}"),
                "statusCode": "00", "statusMessage": "SUCCESS"}),
        ));
    }
    if url == "https://api-sandbox.duitku.com/api/merchant/transactionStatus" {
        let order = text(&body()["merchantOrderId"]);
        let Some(t) = ledger.latest("duitku", &order) else {
            return Some(json_answer(
                400,
                json!({"Message": "transaction not found"}),
            ));
        };
        let code = match t.state {
            State::Paid => "00",
            State::Pending => "01",
            State::Denied | State::Expired => "02",
        };
        return Some(json_answer(
            200,
            json!({"merchantOrderId": order, "reference": t.reference,
                "amount": t.amount.to_string(), "fee": "0", "statusCode": code,
                "statusMessage": "x"}),
        ));
    }
    if url == "https://app.sandbox.midtrans.com/snap/v1/transactions" {
        let b = body();
        let order = text(&b["transaction_details"]["order_id"]);
        if ledger.latest("midtrans", &order).is_some() {
            return Some(json_answer(
                400,
                json!({"error_messages": ["transaction_details.order_id sudah digunakan"]}),
            ));
        }
        let amount = b["transaction_details"]["gross_amount"]
            .as_u64()
            .unwrap_or(0);
        let token = ledger.mint("midtrans", "MT", &order, amount);
        return Some(json_answer(
            201,
            json!({"token": token,
                "redirect_url": format!("https://app.sandbox.midtrans.com/snap/v2/vtweb/{token}")}),
        ));
    }
    if let Some(order) = url
        .strip_prefix("https://api.sandbox.midtrans.com/v2/")
        .and_then(|rest| rest.strip_suffix("/status"))
    {
        let Some(t) = ledger.latest("midtrans", order) else {
            return Some(json_answer(404, json!({"status_code": "404"})));
        };
        let (transaction, code) = match t.state {
            // Until the buyer picks a payment method, Midtrans knows no transaction.
            State::Pending => return Some(json_answer(404, json!({"status_code": "404"}))),
            State::Paid => ("settlement", "200"),
            State::Denied => ("deny", "202"),
            State::Expired => ("expire", "407"),
        };
        return Some(json_answer(
            200,
            json!({"order_id": order, "status_code": code, "transaction_status": transaction,
                "gross_amount": format!("{}.00", t.amount), "fraud_status": "accept",
                "payment_type": "qris"}),
        ));
    }
    if url == "https://api.xendit.co/v2/invoices" {
        let b = body();
        let order = text(&b["external_id"]);
        let amount = b["amount"].as_u64().unwrap_or(0);
        let id = ledger.mint("xendit", "XI", &order, amount);
        return Some(json_answer(
            200,
            json!({"id": id, "external_id": order, "status": "PENDING", "amount": amount,
                "invoice_url": format!("https://checkout.xendit.test/{id}")}),
        ));
    }
    if let Some(id) = url.strip_prefix("https://api.xendit.co/v2/invoices/") {
        let Some(t) = ledger.by_reference(id) else {
            return Some(json_answer(
                404,
                json!({"error_code": "INVOICE_NOT_FOUND_ERROR"}),
            ));
        };
        let status = match t.state {
            State::Pending | State::Denied => "PENDING",
            State::Paid => "PAID",
            State::Expired => "EXPIRED",
        };
        return Some(json_answer(
            200,
            json!({"id": t.reference, "external_id": t.order, "status": status,
                "amount": t.amount}),
        ));
    }
    if url == "https://tripay.co.id/api-sandbox/transaction/create" {
        let form: Vec<(String, String)> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let order = field("merchant_ref");
        let amount = field("amount").parse().unwrap_or(0);
        let reference = ledger.mint("tripay", "TP", &order, amount);
        return Some(json_answer(
            200,
            json!({"success": true, "message": "", "data": {"reference": reference,
                "merchant_ref": order, "status": "UNPAID",
                "checkout_url": format!("https://tripay.test/checkout/{reference}")}}),
        ));
    }
    if let Some(reference) =
        url.strip_prefix("https://tripay.co.id/api-sandbox/transaction/detail?reference=")
    {
        let fee = ledger.tripay_fee;
        let Some(t) = ledger.by_reference(reference) else {
            return Some(json_answer(404, json!({"success": false})));
        };
        let status = match t.state {
            State::Pending => "UNPAID",
            State::Paid => "PAID",
            State::Denied => "FAILED",
            State::Expired => "EXPIRED",
        };
        // Tripay's detail answer: `amount` is what the buyer pays, its fee included.
        return Some(json_answer(
            200,
            json!({"success": true, "message": "", "data": {"reference": t.reference,
                "merchant_ref": t.order, "status": status, "amount": t.amount + fee,
                "fee_merchant": 0, "fee_customer": fee, "total_fee": fee,
                "amount_received": t.amount,
                "order_items": [{"sku": "TOPUP", "price": t.amount, "quantity": 1,
                                 "subtotal": t.amount}]}}),
        ));
    }
    None
}

/// The notification the gateway of `txn` sends for its state, signed as it signs it (Duitku
/// with HMAC).
pub fn notice_of(txn: &Txn, tripay_fee: u64) -> Request {
    signed_notice(txn, tripay_fee, false)
}

/// [`notice_of`], with Duitku's legacy MD5 signature when `legacy`.
pub fn signed_notice(txn: &Txn, tripay_fee: u64, legacy: bool) -> Request {
    let request = |path: &str, content_type: &str, body: String| {
        Request::new("POST", path)
            .with_header("content-type", content_type)
            .with_body(body)
    };
    let (id, amount) = (txn.order.as_str(), txn.amount);
    match txn.gateway {
        "duitku" => {
            let amount = amount.to_string();
            let message = format!("DXXXX{amount}{id}");
            let signature = if legacy {
                hex::encode(Md5::digest(format!("{message}{DUITKU_KEY}")))
            } else {
                sign(&Secret::new(DUITKU_KEY), message.as_bytes())
            };
            let code = match txn.state {
                State::Paid => "00",
                State::Pending => "01",
                State::Denied | State::Expired => "02",
            };
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("merchantCode", "DXXXX")
                .append_pair("amount", &amount)
                .append_pair("merchantOrderId", id)
                .append_pair("paymentCode", "VC")
                .append_pair("resultCode", code)
                .append_pair("reference", &txn.reference)
                .append_pair("signature", &signature)
                .finish();
            request(
                "/callback/duitku",
                "application/x-www-form-urlencoded",
                body,
            )
        }
        "midtrans" => {
            let (status, code) = match txn.state {
                State::Paid => ("settlement", "200"),
                State::Pending => ("pending", "201"),
                State::Denied => ("deny", "202"),
                State::Expired => ("expire", "407"),
            };
            let gross = format!("{amount}.00");
            let signature = hex::encode(Sha512::digest(format!("{id}{code}{gross}{MIDTRANS_KEY}")));
            let body = json!({"transaction_status": status, "status_code": code,
                "signature_key": signature, "payment_type": "qris", "order_id": id,
                "gross_amount": gross, "fraud_status": "accept", "currency": "IDR",
                "transaction_id": format!("t-{}", txn.reference)});
            request("/callback/midtrans", "application/json", body.to_string())
        }
        "xendit" => {
            let status = match txn.state {
                State::Paid => "PAID",
                State::Expired => "EXPIRED",
                State::Pending | State::Denied => "PENDING",
            };
            let body = json!({"id": txn.reference, "external_id": id, "status": status,
                "amount": amount, "paid_amount": amount, "payment_channel": "BCA"});
            request("/callback/xendit", "application/json", body.to_string())
                .with_header("x-callback-token", XENDIT_TOKEN)
        }
        "tripay" => {
            let status = match txn.state {
                State::Paid => "PAID",
                State::Pending => "UNPAID",
                State::Denied => "FAILED",
                State::Expired => "EXPIRED",
            };
            let body = json!({"reference": txn.reference, "merchant_ref": id,
                "payment_method_code": "QRIS", "total_amount": amount + tripay_fee,
                "fee_merchant": 0, "fee_customer": tripay_fee, "amount_received": amount,
                "is_closed_payment": 1, "status": status, "paid_at": 1_700_000_000})
            .to_string();
            let signature = sign(&Secret::new(TRIPAY_PRIVATE), body.as_bytes());
            request("/callback/tripay", "application/json", body)
                .with_header("x-callback-event", "payment_status")
                .with_header("x-callback-signature", &signature)
        }
        other => panic!("no gateway {other}"),
    }
}

/// A Duitku notice body with `field` replaced by `value` (or dropped when `None`), the
/// signature left as it was: what an adversary can do to the fields Duitku does not sign.
pub fn edit_form(request: &Request, field: &str, value: Option<&str>) -> Request {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&request.body)
        .into_owned()
        .filter_map(|(k, v)| match (k == field, value) {
            (true, Some(value)) => Some((k, value.to_string())),
            (true, None) => None,
            (false, _) => Some((k, v)),
        })
        .collect();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    request.clone().with_body(body)
}
