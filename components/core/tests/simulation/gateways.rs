//! The five payment gateways as simulated parties. Each keeps its own ledger of what was
//! really paid, speaks its own protocol (create, status query, notification and their
//! signatures), refuses requests the real one refuses, and follows its own create rules:
//! Midtrans takes an order id once (again only after its transaction expired, when a run
//! says so), Xendit makes a new invoice for every create of one `external_id`, Duitku hands
//! the pending transaction of an order id back to a second create (its docs' "Amount is
//! different" and "transaction is still in progress" answers show it keys transactions by
//! order id).
//! An invoice can be paid only before the expiry the create asked for.

use md5::Md5;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};
use topup_core::config::Secret;
use topup_core::http::Request;
use topup_core::platform::{OutboundRequest, OutboundResponse, TransportError};
use topup_core::signature::{sign, signed_content, verify_signature};

/// The Central PG's origin.
pub const PG_URL: &str = "http://pg.sim";
/// Duitku's API origin.
pub const DUITKU_URL: &str = "http://duitku.sim";
/// Midtrans Snap's origin (creates).
pub const SNAP_URL: &str = "http://snap.sim";
/// Midtrans's Core API origin (status).
pub const MIDTRANS_URL: &str = "http://midtrans.sim";
/// Xendit's API origin.
pub const XENDIT_URL: &str = "http://xendit.sim";
/// Tripay's origin (its API lives under `/api-sandbox`).
pub const TRIPAY_URL: &str = "http://tripay.sim";

/// The Central PG's secret (the shared secret of every run).
pub const PG_SECRET: &str = crate::world::SECRET;
/// Duitku's merchant code and API key.
pub const DUITKU_MERCHANT: &str = "DSIM1";
/// Duitku's API key.
pub const DUITKU_KEY: &str = "sim-duitku-key";
/// Midtrans's server key.
pub const MIDTRANS_KEY: &str = "SB-Mid-server-sim";
/// Xendit's secret key.
pub const XENDIT_KEY: &str = "xnd_development_sim";
/// Xendit's callback token.
pub const XENDIT_TOKEN: &str = "sim-xendit-token";
/// Tripay's merchant code.
pub const TRIPAY_MERCHANT: &str = "TSIM1";
/// Tripay's API key.
pub const TRIPAY_KEY: &str = "DEV-sim-key";
/// Tripay's private key.
pub const TRIPAY_PRIVATE: &str = "sim-tripay-private";

/// A gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gw {
    /// The Central PG.
    Central,
    /// Duitku.
    Duitku,
    /// Midtrans Snap.
    Midtrans,
    /// Xendit Invoices.
    Xendit,
    /// Tripay.
    Tripay,
}

impl Gw {
    /// Every gateway.
    pub const ALL: [Gw; 5] = [
        Gw::Central,
        Gw::Duitku,
        Gw::Midtrans,
        Gw::Xendit,
        Gw::Tripay,
    ];

    /// Its name in this app.
    pub fn name(self) -> &'static str {
        match self {
            Gw::Central => "central",
            Gw::Duitku => "duitku",
            Gw::Midtrans => "midtrans",
            Gw::Xendit => "xendit",
            Gw::Tripay => "tripay",
        }
    }

    /// The variables that hold its credentials (cleared to take them away).
    pub fn credentials(self) -> &'static [&'static str] {
        match self {
            Gw::Central => &[],
            Gw::Duitku => &["duitku_api_key"],
            Gw::Midtrans => &["midtrans_server_key"],
            Gw::Xendit => &["xendit_secret_key", "xendit_callback_token"],
            Gw::Tripay => &["tripay_private_key"],
        }
    }
}

/// Where a transaction stands at its gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// Waiting for the buyer.
    Pending,
    /// Paid (`Txn::paid` says how much).
    Paid,
    /// A payment was denied; Midtrans lets the buyer try again in the same page.
    Denied,
    /// Expired unpaid.
    Expired,
}

/// One transaction a create made.
#[derive(Debug, Clone)]
pub struct Txn {
    /// The gateway.
    pub gw: Gw,
    /// The order id the create sent (our deposit id).
    pub order: String,
    /// The gateway's reference.
    pub reference: String,
    /// What the create billed.
    pub billed: u64,
    /// What the buyer paid, once paid.
    pub paid: Option<u64>,
    /// Where it stands.
    pub state: TxnState,
    /// When the buyer can no longer pay it (Unix ms).
    pub expires_at: u64,
    /// Midtrans: whether the buyer picked a payment method (its status API says 404 until).
    pub started: bool,
}

impl Txn {
    /// Where it stands at `now`: unpaid past its expiry, it has expired.
    pub fn state_at(&self, now: u64) -> TxnState {
        match self.state {
            TxnState::Pending | TxnState::Denied if now >= self.expires_at => TxnState::Expired,
            state => state,
        }
    }
}

/// What differs between runs in how the gateways behave.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Midtrans takes an order id again once its transaction expired.
    pub midtrans_reuses_expired: bool,
    /// Tripay's fee charged to the buyer.
    pub tripay_fee: u64,
    /// Duitku's legacy MD5/SHA-256 signatures instead of HMAC.
    pub duitku_legacy: bool,
    /// The Central PG signs `{timestamp}.{nonce}.{body}`.
    pub pg_timestamped: bool,
}

/// Every transaction of every gateway.
#[derive(Debug, Default)]
pub struct Ledger {
    /// In the order they were made.
    pub txns: Vec<Txn>,
}

impl Ledger {
    /// The transaction with `reference`.
    pub fn get(&self, reference: &str) -> Option<&Txn> {
        self.txns.iter().find(|t| t.reference == reference)
    }

    /// The transaction with `reference`, to change.
    pub fn get_mut(&mut self, reference: &str) -> Option<&mut Txn> {
        self.txns.iter_mut().find(|t| t.reference == reference)
    }

    /// The last transaction of `order` at `gw` (what a status query by order id sees).
    pub fn latest(&self, gw: Gw, order: &str) -> Option<&Txn> {
        self.txns
            .iter()
            .rev()
            .find(|t| t.gw == gw && t.order == order)
    }

    fn mint(&mut self, gw: Gw, prefix: &str, order: &str, billed: u64, expires_at: u64) -> String {
        let reference = format!("{prefix}{}-{order}", self.txns.len() + 1);
        self.txns.push(Txn {
            gw,
            order: order.to_string(),
            reference: reference.clone(),
            billed,
            paid: None,
            state: TxnState::Pending,
            expires_at,
            started: false,
        });
        reference
    }

    /// The buyer pays `amount` for `reference` at `now`; false when it can no longer be paid.
    pub fn pay(&mut self, reference: &str, amount: u64, now: u64) -> bool {
        match self.get_mut(reference) {
            Some(t)
                if now < t.expires_at
                    && matches!(t.state, TxnState::Pending | TxnState::Denied) =>
            {
                t.state = TxnState::Paid;
                t.paid = Some(amount);
                t.started = true;
                true
            }
            _ => false,
        }
    }

    /// A payment of `reference` is denied at `now`; false when nothing was pending.
    pub fn deny(&mut self, reference: &str, now: u64) -> bool {
        match self.get_mut(reference) {
            Some(t) if now < t.expires_at && t.state == TxnState::Pending => {
                t.state = TxnState::Denied;
                t.started = true;
                true
            }
            _ => false,
        }
    }
}

/// The gateway an outbound request goes to, if any.
pub fn gateway_of(url: &str) -> Option<Gw> {
    [
        (PG_URL, Gw::Central),
        (DUITKU_URL, Gw::Duitku),
        (SNAP_URL, Gw::Midtrans),
        (MIDTRANS_URL, Gw::Midtrans),
        (XENDIT_URL, Gw::Xendit),
        (TRIPAY_URL, Gw::Tripay),
    ]
    .into_iter()
    .find(|(origin, _)| url.starts_with(origin))
    .map(|(_, gw)| gw)
}

fn header<'a>(request: &'a OutboundRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn basic(key: &str) -> String {
    use std::fmt::Write as _;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{key}:").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                let _ = write!(out, "=");
            }
        }
    }
    format!("Basic {out}")
}

/// A JSON answer.
pub fn answer(status: u16, body: Value) -> Result<OutboundResponse, TransportError> {
    Ok(OutboundResponse {
        status,
        body: body.to_string().into_bytes(),
    })
}

/// Why a request is refused the way the real gateway refuses it: the caller records a
/// violation (our adapter sent something the gateway would not take).
pub type Refusal = (String, Result<OutboundResponse, TransportError>);

fn refuse(why: impl Into<String>, status: u16) -> Refusal {
    (why.into(), answer(status, json!({"error": "refused"})))
}

/// The gateway's answer to a create at `now`: the invoice, or a refusal.
pub fn create(
    ledger: &mut Ledger,
    rules: &Rules,
    gw: Gw,
    request: &OutboundRequest,
    now: u64,
) -> Result<Result<OutboundResponse, TransportError>, Refusal> {
    let json_body = || serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
    match gw {
        Gw::Central => {
            let body = json_body();
            let authentic = header(request, "authorization")
                == Some(&format!("Bearer {PG_SECRET}"))
                && header(request, "x-signature").is_some_and(|sig| {
                    let content = if rules.pg_timestamped {
                        signed_content(
                            topup_core::config::SignatureScheme::Timestamped,
                            header(request, "x-timestamp").unwrap_or(""),
                            header(request, "x-nonce").unwrap_or(""),
                            &request.body,
                        )
                    } else {
                        request.body.clone()
                    };
                    verify_signature([&Secret::new(PG_SECRET)], &content, sig)
                });
            let (Some(order), Some(amount)) = (body["orderId"].as_str(), body["amount"].as_u64())
            else {
                return Err(refuse(format!("central: malformed create {body}"), 400));
            };
            if !authentic {
                return Err(refuse("central: unauthentic create", 401));
            }
            let reference = ledger.mint(gw, "INV", order, amount, u64::MAX);
            Ok(answer(
                200,
                json!({"statusCode": "00", "data": {"reference": reference,
                    "paymentUrl": format!("https://pay.sim/{reference}")}}),
            ))
        }
        Gw::Duitku => {
            let body = json_body();
            let timestamp = header(request, "x-duitku-timestamp").unwrap_or("");
            let expected = if rules.duitku_legacy {
                hex::encode(Sha256::digest(format!(
                    "{DUITKU_MERCHANT}{timestamp}{DUITKU_KEY}"
                )))
            } else {
                sign(
                    &Secret::new(DUITKU_KEY),
                    format!("{DUITKU_MERCHANT}{timestamp}").as_bytes(),
                )
            };
            if header(request, "x-duitku-merchantcode") != Some(DUITKU_MERCHANT)
                || header(request, "x-duitku-signature") != Some(expected.as_str())
            {
                return Err(refuse("duitku: unauthentic create", 401));
            }
            let order = body["merchantOrderId"].as_str().unwrap_or("").to_string();
            let amount = body["paymentAmount"].as_u64().unwrap_or(0);
            let minutes = body["expiryPeriod"].as_u64().unwrap_or(0);
            let complete = !order.is_empty()
                && amount > 0
                && minutes > 0
                && ["email", "callbackUrl", "returnUrl", "productDetails"]
                    .iter()
                    .all(|f| body[*f].as_str().is_some_and(|v| !v.is_empty()));
            if !complete {
                return Err(refuse(format!("duitku: incomplete create {body}"), 400));
            }
            if let Some(pending) = ledger
                .latest(gw, &order)
                .filter(|t| t.state_at(now) == TxnState::Pending)
            {
                if pending.billed != amount {
                    return Ok(answer(400, json!({"Message": "Amount is different"})));
                }
                let reference = pending.reference.clone();
                return Ok(duitku_invoice(&reference));
            }
            let reference = ledger.mint(gw, "DK", &order, amount, now + minutes * 60_000);
            Ok(duitku_invoice(&reference))
        }
        Gw::Midtrans => {
            if header(request, "authorization") != Some(basic(MIDTRANS_KEY).as_str()) {
                return Err(refuse("midtrans: unauthentic create", 401));
            }
            let body = json_body();
            let order = body["transaction_details"]["order_id"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let amount = body["transaction_details"]["gross_amount"]
                .as_u64()
                .unwrap_or(0);
            let page = body["page_expiry"]["duration"].as_u64().unwrap_or(0);
            let pay = body["expiry"]["duration"].as_u64().unwrap_or(0);
            if order.is_empty() || amount == 0 || page < 5 || pay == 0 {
                return Err(refuse(format!("midtrans: bad create {body}"), 400));
            }
            let taken = ledger.latest(gw, &order).is_some_and(|t| {
                !(rules.midtrans_reuses_expired && t.state_at(now) == TxnState::Expired)
            });
            if taken {
                return Ok(answer(
                    400,
                    json!({"error_messages": ["transaction_details.order_id sudah digunakan"]}),
                ));
            }
            let token = ledger.mint(gw, "MT", &order, amount, now + (page + pay) * 60_000);
            Ok(answer(
                201,
                json!({"token": token, "redirect_url": format!("https://snap.sim/v2/{token}")}),
            ))
        }
        Gw::Xendit => {
            if header(request, "authorization") != Some(basic(XENDIT_KEY).as_str()) {
                return Err(refuse("xendit: unauthentic create", 401));
            }
            let body = json_body();
            let order = body["external_id"].as_str().unwrap_or("").to_string();
            let amount = body["amount"].as_u64().unwrap_or(0);
            let duration = body["invoice_duration"].as_u64().unwrap_or(0);
            if order.is_empty() || amount == 0 || duration == 0 {
                return Err(refuse(format!("xendit: bad create {body}"), 400));
            }
            let id = ledger.mint(gw, "XI", &order, amount, now + duration * 1000);
            Ok(answer(
                200,
                json!({"id": id, "external_id": order, "status": "PENDING", "amount": amount,
                    "invoice_url": format!("https://checkout.xendit.sim/{id}")}),
            ))
        }
        Gw::Tripay => {
            if header(request, "authorization") != Some(&format!("Bearer {TRIPAY_KEY}")) {
                return Err(refuse("tripay: unauthentic create", 401));
            }
            let form: Map<String, Value> = form_urlencoded::parse(&request.body)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect();
            let field = |name: &str| {
                form.get(name)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let (order, amount) = (field("merchant_ref"), field("amount"));
            let expected = sign(
                &Secret::new(TRIPAY_PRIVATE),
                format!("{TRIPAY_MERCHANT}{order}{amount}").as_bytes(),
            );
            if field("signature") != expected {
                return Err(refuse("tripay: bad create signature", 400));
            }
            let expires = field("expired_time").parse::<u64>().unwrap_or(0) * 1000;
            let amount: u64 = amount.parse().unwrap_or(0);
            if order.is_empty() || amount == 0 || expires <= now || field("callback_url").is_empty()
            {
                return Err(refuse(format!("tripay: bad create {form:?}"), 400));
            }
            let reference = ledger.mint(gw, "TP", &order, amount, expires);
            Ok(answer(
                200,
                json!({"success": true, "message": "", "data": {"reference": reference,
                    "merchant_ref": order, "status": "UNPAID",
                    "checkout_url": format!("https://tripay.sim/checkout/{reference}")}}),
            ))
        }
    }
}

fn duitku_invoice(reference: &str) -> Result<OutboundResponse, TransportError> {
    answer(
        200,
        json!({"merchantCode": DUITKU_MERCHANT, "reference": reference,
            "paymentUrl": format!("https://duitku.sim/pay/{reference}"),
            "statusCode": "00", "statusMessage": "SUCCESS"}),
    )
}

/// The gateway's answer to a status query at `now`, from its ledger.
pub fn status(
    ledger: &Ledger,
    rules: &Rules,
    gw: Gw,
    request: &OutboundRequest,
    now: u64,
) -> Result<Result<OutboundResponse, TransportError>, Refusal> {
    let url = request.url.as_str();
    match gw {
        Gw::Central => Err(refuse("central: the Central PG has no status API", 404)),
        Gw::Duitku => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let order = body["merchantOrderId"].as_str().unwrap_or("").to_string();
            let expected = if rules.duitku_legacy {
                hex::encode(Md5::digest(format!("{DUITKU_MERCHANT}{order}{DUITKU_KEY}")))
            } else {
                sign(
                    &Secret::new(DUITKU_KEY),
                    format!("{DUITKU_MERCHANT}{order}").as_bytes(),
                )
            };
            if body["signature"].as_str() != Some(expected.as_str()) {
                return Err(refuse("duitku: bad status signature", 401));
            }
            let Some(t) = ledger.latest(gw, &order) else {
                return Ok(answer(400, json!({"Message": "transaction not found"})));
            };
            let code = match t.state_at(now) {
                TxnState::Paid => "00",
                TxnState::Pending => "01",
                TxnState::Denied | TxnState::Expired => "02",
            };
            Ok(answer(
                200,
                json!({"merchantOrderId": order, "reference": t.reference,
                    "amount": t.paid.unwrap_or(t.billed).to_string(), "fee": "0",
                    "statusCode": code, "statusMessage": "x"}),
            ))
        }
        Gw::Midtrans => {
            if request
                .headers
                .iter()
                .all(|(n, v)| n != "authorization" || *v != basic(MIDTRANS_KEY))
            {
                return Err(refuse("midtrans: unauthentic status query", 401));
            }
            let order = url
                .strip_prefix(&format!("{MIDTRANS_URL}/v2/"))
                .and_then(|rest| rest.strip_suffix("/status"))
                .unwrap_or("");
            let Some(t) = ledger
                .latest(gw, order)
                .filter(|t| t.started || t.state_at(now) == TxnState::Expired)
            else {
                return Ok(answer(
                    404,
                    json!({"status_code": "404", "status_message": "not found"}),
                ));
            };
            let (transaction, code) = match t.state_at(now) {
                TxnState::Paid => ("settlement", "200"),
                TxnState::Pending => ("pending", "201"),
                TxnState::Denied => ("deny", "202"),
                TxnState::Expired => ("expire", "407"),
            };
            Ok(answer(
                200,
                json!({"order_id": order, "status_code": code, "transaction_status": transaction,
                    "gross_amount": format!("{}.00", t.paid.unwrap_or(t.billed)),
                    "fraud_status": "accept", "payment_type": "qris"}),
            ))
        }
        Gw::Xendit => {
            if request
                .headers
                .iter()
                .all(|(n, v)| n != "authorization" || *v != basic(XENDIT_KEY))
            {
                return Err(refuse("xendit: unauthentic status query", 401));
            }
            let id = url
                .strip_prefix(&format!("{XENDIT_URL}/v2/invoices/"))
                .unwrap_or("");
            let Some(t) = ledger.get(id).filter(|t| t.gw == gw) else {
                return Ok(answer(
                    404,
                    json!({"error_code": "INVOICE_NOT_FOUND_ERROR"}),
                ));
            };
            let status = match t.state_at(now) {
                TxnState::Pending | TxnState::Denied => "PENDING",
                TxnState::Paid => "PAID",
                TxnState::Expired => "EXPIRED",
            };
            let mut invoice = json!({"id": t.reference, "external_id": t.order, "status": status,
                "amount": t.billed});
            if let Some(paid) = t.paid {
                invoice["paid_amount"] = json!(paid);
            }
            Ok(answer(200, invoice))
        }
        Gw::Tripay => {
            if request
                .headers
                .iter()
                .all(|(n, v)| n != "authorization" || *v != format!("Bearer {TRIPAY_KEY}"))
            {
                return Err(refuse("tripay: unauthentic status query", 401));
            }
            let reference = url
                .strip_prefix(&format!(
                    "{TRIPAY_URL}/api-sandbox/transaction/detail?reference="
                ))
                .unwrap_or("");
            let Some(t) = ledger.get(reference).filter(|t| t.gw == gw) else {
                return Ok(answer(
                    404,
                    json!({"success": false, "message": "not found"}),
                ));
            };
            let status = match t.state_at(now) {
                TxnState::Pending => "UNPAID",
                TxnState::Paid => "PAID",
                TxnState::Denied => "FAILED",
                TxnState::Expired => "EXPIRED",
            };
            let fee = rules.tripay_fee;
            Ok(answer(
                200,
                json!({"success": true, "message": "", "data": {"reference": t.reference,
                    "merchant_ref": t.order, "status": status,
                    "amount": t.paid.unwrap_or(t.billed) + fee, "fee_merchant": 0,
                    "fee_customer": fee, "total_fee": fee,
                    "amount_received": t.paid.unwrap_or(t.billed)}}),
            ))
        }
    }
}

/// A notification as sent: which route, and the request (for the Central PG, its body; the
/// PG signs each attempt when it is sent, see [`central_request`]).
#[derive(Debug, Clone)]
pub struct Notice {
    /// The gateway.
    pub gw: Gw,
    /// The request.
    pub request: Request,
}

/// The notification `txn`'s gateway sends for its current state, signed as it signs.
pub fn notice_of(txn: &Txn, rules: &Rules) -> Notice {
    let json_request = json_notice;
    let amount = txn.paid.unwrap_or(txn.billed);
    let id = txn.order.as_str();
    let request = match txn.gw {
        Gw::Central => {
            let (status, code) = match txn.state {
                TxnState::Paid => ("PAID", "00"),
                _ => ("FAILED", "02"),
            };
            let body = json!({"orderId": id, "reference": txn.reference, "status": status,
                "resultCode": code, "duitkuData": {"merchantOrderId": id,
                "amount": amount.to_string(), "paymentMethod": "VC"}});
            json_request("/internal/payment-callback", body.to_string())
        }
        Gw::Duitku => {
            let amount = amount.to_string();
            let message = format!("{DUITKU_MERCHANT}{amount}{id}");
            let signature = if rules.duitku_legacy {
                hex::encode(Md5::digest(format!("{message}{DUITKU_KEY}")))
            } else {
                sign(&Secret::new(DUITKU_KEY), message.as_bytes())
            };
            let code = match txn.state {
                TxnState::Paid => "00",
                TxnState::Pending => "01",
                TxnState::Denied | TxnState::Expired => "02",
            };
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("merchantCode", DUITKU_MERCHANT)
                .append_pair("amount", &amount)
                .append_pair("merchantOrderId", id)
                .append_pair("paymentCode", "VC")
                .append_pair("resultCode", code)
                .append_pair("reference", &txn.reference)
                .append_pair("signature", &signature)
                .finish();
            Request::new("POST", "/callback/duitku")
                .with_header("content-type", "application/x-www-form-urlencoded")
                .with_body(body)
        }
        Gw::Midtrans => {
            let (status, code) = match txn.state {
                TxnState::Paid => ("settlement", "200"),
                TxnState::Pending => ("pending", "201"),
                TxnState::Denied => ("deny", "202"),
                TxnState::Expired => ("expire", "407"),
            };
            let gross = format!("{amount}.00");
            json_request(
                "/callback/midtrans",
                midtrans_body(id, code, &gross, status).to_string(),
            )
        }
        Gw::Xendit => {
            let status = match txn.state {
                TxnState::Paid => "PAID",
                TxnState::Expired => "EXPIRED",
                TxnState::Pending | TxnState::Denied => "PENDING",
            };
            let body = json!({"id": txn.reference, "external_id": id, "status": status,
                "amount": txn.billed, "paid_amount": amount, "payment_channel": "BCA"});
            json_request("/callback/xendit", body.to_string())
                .with_header("x-callback-token", XENDIT_TOKEN)
        }
        Gw::Tripay => {
            let status = match txn.state {
                TxnState::Paid => "PAID",
                TxnState::Pending => "UNPAID",
                TxnState::Denied => "FAILED",
                TxnState::Expired => "EXPIRED",
            };
            let body = json!({"reference": txn.reference, "merchant_ref": id,
                "payment_method_code": "QRIS", "total_amount": amount + rules.tripay_fee,
                "fee_merchant": 0, "fee_customer": rules.tripay_fee, "amount_received": amount,
                "is_closed_payment": 1, "status": status, "paid_at": 1_800_000_000})
            .to_string();
            tripay_request(body)
        }
    };
    Notice {
        gw: txn.gw,
        request,
    }
}

/// A JSON notification to `path`.
pub fn json_notice(path: &str, body: String) -> Request {
    Request::new("POST", path)
        .with_header("content-type", "application/json")
        .with_body(body)
}

/// A Midtrans notification body with its `signature_key`.
pub fn midtrans_body(order: &str, code: &str, gross: &str, status: &str) -> Value {
    let signature = hex::encode(Sha512::digest(format!(
        "{order}{code}{gross}{MIDTRANS_KEY}"
    )));
    json!({"transaction_status": status, "status_code": code, "signature_key": signature,
        "payment_type": "qris", "order_id": order, "gross_amount": gross,
        "fraud_status": "accept", "currency": "IDR", "transaction_id": format!("t-{order}")})
}

/// A Tripay notification of `body`, signed.
pub fn tripay_request(body: String) -> Request {
    let signature = sign(&Secret::new(TRIPAY_PRIVATE), body.as_bytes());
    Request::new("POST", "/callback/tripay")
        .with_header("content-type", "application/json")
        .with_header("x-callback-event", "payment_status")
        .with_header("x-callback-signature", &signature)
        .with_body(body)
}

/// The Central PG's callback request for `body`, signed now as the PG signs (with `nonce`
/// under the timestamped scheme, or when it sends one).
pub fn central_request(
    body: &[u8],
    nonce: Option<&str>,
    timestamp: u64,
    timestamped: bool,
) -> Request {
    let timestamp = timestamp.to_string();
    let content = if timestamped {
        signed_content(
            topup_core::config::SignatureScheme::Timestamped,
            &timestamp,
            nonce.unwrap_or(""),
            body,
        )
    } else {
        body.to_vec()
    };
    let mut request = Request::new("POST", "/internal/payment-callback")
        .with_header("authorization", &format!("Bearer {PG_SECRET}"))
        .with_header("content-type", "application/json")
        .with_header("x-signature", &sign(&Secret::new(PG_SECRET), &content))
        .with_header("x-timestamp", &timestamp)
        .with_body(body.to_vec());
    if let Some(nonce) = nonce {
        request = request.with_header("x-nonce", nonce);
    }
    request
}

/// The variables that configure every gateway against these parties.
pub fn variables(rules: &Rules) -> Vec<(&'static str, String)> {
    vec![
        ("public_base_url", "https://topup.sim".into()),
        (
            "pg_signature",
            if rules.pg_timestamped {
                "timestamped"
            } else {
                "body"
            }
            .into(),
        ),
        ("duitku_base_url", DUITKU_URL.into()),
        ("duitku_merchant_code", DUITKU_MERCHANT.into()),
        ("duitku_api_key", DUITKU_KEY.into()),
        (
            "duitku_signature",
            if rules.duitku_legacy {
                "legacy"
            } else {
                "hmac"
            }
            .into(),
        ),
        ("midtrans_snap_url", SNAP_URL.into()),
        ("midtrans_api_url", MIDTRANS_URL.into()),
        ("midtrans_server_key", MIDTRANS_KEY.into()),
        ("xendit_base_url", XENDIT_URL.into()),
        ("xendit_secret_key", XENDIT_KEY.into()),
        ("xendit_callback_token", XENDIT_TOKEN.into()),
        ("tripay_base_url", TRIPAY_URL.into()),
        ("tripay_api_path", "/api-sandbox".into()),
        ("tripay_merchant_code", TRIPAY_MERCHANT.into()),
        ("tripay_api_key", TRIPAY_KEY.into()),
        ("tripay_private_key", TRIPAY_PRIVATE.into()),
    ]
}
