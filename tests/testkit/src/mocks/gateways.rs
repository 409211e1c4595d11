//! Mock payment gateways: Duitku POP, Midtrans Snap, Xendit Invoices and Tripay closed
//! payments, each as strict as the real one about what it receives (credentials, request
//! signatures, required fields, a repeated order id) and each answering in its own format.
//! A mock never calls back by itself: [`MockGateway::pay`] and [`MockGateway::expire`] change
//! an order and return the notification the gateway would send, signed as it signs it, for
//! the test to deliver (or to drop, as a lost callback).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

use super::{lock, serve, Received, Reply};

/// Which gateway a mock plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Duitku POP (HMAC-SHA256 signatures keyed with the API key).
    Duitku,
    /// Midtrans Snap and its status API.
    Midtrans,
    /// Xendit Invoices.
    Xendit,
    /// Tripay closed payments (sandbox paths).
    Tripay,
}

impl Protocol {
    /// The gateway's name in this app (`gateway` of a create, `/callback/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Duitku => "duitku",
            Protocol::Midtrans => "midtrans",
            Protocol::Xendit => "xendit",
            Protocol::Tripay => "tripay",
        }
    }

    /// Every protocol.
    pub const ALL: [Protocol; 4] = [
        Protocol::Duitku,
        Protocol::Midtrans,
        Protocol::Xendit,
        Protocol::Tripay,
    ];
}

/// The credentials a mock gateway holds; the app must be configured with the same.
pub const MERCHANT_CODE: &str = "DMOCK1";
/// Duitku API key, Midtrans server key, Xendit secret key or Tripay API key.
pub const API_KEY: &str = "mock-gateway-api-key";
/// Tripay's private key.
pub const PRIVATE_KEY: &str = "mock-tripay-private-key";
/// Xendit's callback verification token.
pub const CALLBACK_TOKEN: &str = "mock-xendit-callback-token";

/// Where an order stands at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Waiting for the buyer.
    Pending,
    /// Paid.
    Paid,
    /// Expired unpaid.
    Expired,
}

#[derive(Debug, Clone)]
struct Order {
    amount: u64,
    reference: String,
    status: OrderStatus,
}

/// A notification as the gateway would send it.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The app's route for it.
    pub path: String,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its exact body.
    pub body: Vec<u8>,
}

struct GatewayState {
    protocol: Protocol,
    /// Orders by our order id.
    orders: Mutex<HashMap<String, Order>>,
    received: Mutex<Vec<Received>>,
    counter: AtomicU64,
}

/// A mock payment gateway served over HTTP on loopback.
pub struct MockGateway {
    addr: SocketAddr,
    state: Arc<GatewayState>,
}

type Answer = (u16, String);

fn hmac_hex(key: &str, message: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

fn refused(status: u16, message: &str) -> Answer {
    (status, json!({ "message": message }).to_string())
}

impl MockGateway {
    /// Listens on a free loopback port.
    pub async fn start(protocol: Protocol) -> Result<Self> {
        let state = Arc::new(GatewayState {
            protocol,
            orders: Mutex::new(HashMap::new()),
            received: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
        });
        let handler = state.clone();
        let addr = serve(
            "127.0.0.1:0",
            move |received: Received| {
                let state = handler.clone();
                async move {
                    let (status, text) = state.answer(&received);
                    lock(&state.received).push(received);
                    (status, Reply::Whole(text))
                }
            },
            None,
        )
        .await?;
        Ok(Self { addr, state })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The app's variables that point it at this mock, with its credentials.
    pub fn app_variables(&self) -> Vec<(&'static str, String)> {
        let url = self.url();
        match self.state.protocol {
            Protocol::Duitku => vec![
                ("duitku_base_url", url),
                ("duitku_merchant_code", MERCHANT_CODE.into()),
                ("duitku_api_key", API_KEY.into()),
                ("duitku_signature", "hmac".into()),
            ],
            Protocol::Midtrans => vec![
                ("midtrans_snap_url", url.clone()),
                ("midtrans_api_url", url),
                ("midtrans_server_key", API_KEY.into()),
            ],
            Protocol::Xendit => vec![
                ("xendit_base_url", url),
                ("xendit_secret_key", API_KEY.into()),
                ("xendit_callback_token", CALLBACK_TOKEN.into()),
            ],
            Protocol::Tripay => vec![
                ("tripay_base_url", url),
                ("tripay_api_path", "/api-sandbox".into()),
                ("tripay_merchant_code", MERCHANT_CODE.into()),
                ("tripay_api_key", API_KEY.into()),
                ("tripay_private_key", PRIVATE_KEY.into()),
            ],
        }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }

    /// Status queries received so far.
    pub fn status_queries(&self) -> usize {
        self.received()
            .iter()
            .filter(|r| self.state.is_status_query(&r.path))
            .count()
    }

    /// Invoices created so far.
    pub fn orders(&self) -> usize {
        lock(&self.state.orders).len()
    }

    /// The buyer pays order `order_id`; returns the gateway's PAID notification.
    pub fn pay(&self, order_id: &str) -> Notification {
        self.settle(order_id, OrderStatus::Paid)
    }

    /// Order `order_id` expires; returns the gateway's notification of it.
    pub fn expire(&self, order_id: &str) -> Notification {
        self.settle(order_id, OrderStatus::Expired)
    }

    fn settle(&self, order_id: &str, status: OrderStatus) -> Notification {
        let order = {
            let mut orders = lock(&self.state.orders);
            let order = orders
                .get_mut(order_id)
                .unwrap_or_else(|| panic!("no order {order_id} at the mock gateway"));
            order.status = status;
            order.clone()
        };
        self.state.notification(order_id, &order)
    }
}

impl GatewayState {
    fn is_status_query(&self, path: &str) -> bool {
        match self.protocol {
            Protocol::Duitku => path == "/api/merchant/transactionStatus",
            Protocol::Midtrans => path.starts_with("/v2/") && path.ends_with("/status"),
            Protocol::Xendit => path.starts_with("/v2/invoices/"),
            Protocol::Tripay => path.starts_with("/api-sandbox/transaction/detail"),
        }
    }

    fn answer(&self, r: &Received) -> Answer {
        match (self.protocol, r.method.as_str(), r.path.as_str()) {
            (Protocol::Duitku, "POST", "/api/merchant/createInvoice") => self.duitku_create(r),
            (Protocol::Duitku, "POST", "/api/merchant/transactionStatus") => self.duitku_status(r),
            (Protocol::Midtrans, "POST", "/snap/v1/transactions") => self.midtrans_create(r),
            (Protocol::Midtrans, "GET", path) if self.is_status_query(path) => {
                self.midtrans_status(r)
            }
            (Protocol::Xendit, "POST", "/v2/invoices") => self.xendit_create(r),
            (Protocol::Xendit, "GET", path) if self.is_status_query(path) => self.xendit_get(r),
            (Protocol::Tripay, "POST", "/api-sandbox/transaction/create") => self.tripay_create(r),
            (Protocol::Tripay, "GET", path) if self.is_status_query(path) => self.tripay_detail(r),
            _ => refused(404, "no such endpoint"),
        }
    }

    fn next_reference(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        format!("{prefix}{n:08}")
    }

    /// Registers `order_id`; a repeat with another amount, or any repeat where the gateway
    /// takes an order id once, is refused.
    fn open(&self, order_id: &str, amount: u64, once: bool, prefix: &str) -> Result<Order, Answer> {
        let mut orders = lock(&self.orders);
        if let Some(existing) = orders.get(order_id) {
            if once {
                return Err(refused(400, "order id has already been taken"));
            }
            if existing.amount != amount {
                return Err(refused(400, "Amount is different"));
            }
            return Ok(existing.clone());
        }
        let order = Order {
            amount,
            reference: self.next_reference(prefix),
            status: OrderStatus::Pending,
        };
        orders.insert(order_id.to_string(), order.clone());
        Ok(order)
    }

    fn order(&self, order_id: &str) -> Option<Order> {
        lock(&self.orders).get(order_id).cloned()
    }

    fn by_reference(&self, reference: &str) -> Option<(String, Order)> {
        lock(&self.orders)
            .iter()
            .find(|(_, o)| o.reference == reference)
            .map(|(id, o)| (id.clone(), o.clone()))
    }

    // ----- Duitku

    fn duitku_create(&self, r: &Received) -> Answer {
        if r.header("content-type") != Some("application/json") {
            return refused(415, "content type must be application/json");
        }
        let timestamp = r.header("x-duitku-timestamp").unwrap_or("");
        let signature = hmac_hex(API_KEY, format!("{MERCHANT_CODE}{timestamp}").as_bytes());
        if r.header("x-duitku-merchantcode") != Some(MERCHANT_CODE)
            || timestamp.is_empty()
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
            || r.header("x-duitku-signature") != Some(signature.as_str())
        {
            return refused(401, "Unauthorized");
        }
        let body = r.json();
        let text = |name: &str| body[name].as_str().filter(|s| !s.is_empty());
        let (Some(amount), Some(order_id)) =
            (body["paymentAmount"].as_u64(), text("merchantOrderId"))
        else {
            return refused(400, "paymentAmount and merchantOrderId are required");
        };
        for required in ["productDetails", "email", "callbackUrl", "returnUrl"] {
            if text(required).is_none() {
                return refused(400, &format!("{required} is required"));
            }
        }
        match self.open(order_id, amount, false, "DMOCK") {
            Err(answer) => answer,
            Ok(order) => (
                200,
                json!({"merchantCode": MERCHANT_CODE, "reference": order.reference,
                    "paymentUrl": format!("https://app-sandbox.duitku.test/redirect_checkout?reference={}", order.reference),
                    "statusCode": "00", "statusMessage": "SUCCESS"})
                .to_string(),
            ),
        }
    }

    fn duitku_status(&self, r: &Received) -> Answer {
        let body = r.json();
        let order_id = body["merchantOrderId"].as_str().unwrap_or("");
        let signature = hmac_hex(API_KEY, format!("{MERCHANT_CODE}{order_id}").as_bytes());
        if body["merchantCode"] != MERCHANT_CODE || body["signature"] != signature.as_str() {
            return refused(401, "Unauthorized");
        }
        let Some(order) = self.order(order_id) else {
            return refused(400, "transaction not found");
        };
        let code = match order.status {
            OrderStatus::Paid => "00",
            OrderStatus::Pending => "01",
            OrderStatus::Expired => "02",
        };
        (
            200,
            json!({"merchantOrderId": order_id, "reference": order.reference,
                "amount": order.amount.to_string(), "fee": "0", "statusCode": code,
                "statusMessage": "x"})
            .to_string(),
        )
    }

    // ----- Midtrans

    fn midtrans_create(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(basic(API_KEY).as_str()) {
            return refused(401, "Access denied due to unauthorized transaction");
        }
        if r.header("content-type") != Some("application/json") {
            return refused(400, "content type must be application/json");
        }
        let details = &r.json()["transaction_details"];
        let (Some(order_id), Some(amount)) = (
            details["order_id"].as_str(),
            details["gross_amount"].as_u64(),
        ) else {
            return refused(
                400,
                "transaction_details.order_id and gross_amount are required",
            );
        };
        match self.open(order_id, amount, true, "mt-token-") {
            Err(answer) => answer,
            Ok(order) => (
                201,
                json!({"token": order.reference,
                    "redirect_url": format!("https://app.sandbox.midtrans.test/snap/v2/vtweb/{}", order.reference)})
                .to_string(),
            ),
        }
    }

    fn midtrans_fields(order_id: &str, order: &Order) -> Value {
        let (transaction, code) = match order.status {
            OrderStatus::Paid => ("settlement", "200"),
            OrderStatus::Pending => ("pending", "201"),
            OrderStatus::Expired => ("expire", "407"),
        };
        let gross = format!("{}.00", order.amount);
        let signature = hex::encode(Sha512::digest(format!("{order_id}{code}{gross}{API_KEY}")));
        json!({"transaction_time": "2026-11-25 10:00:00", "transaction_status": transaction,
            "transaction_id": format!("tx-{order_id}"), "status_message": "midtrans payment notification",
            "status_code": code, "signature_key": signature, "payment_type": "qris",
            "order_id": order_id, "merchant_id": "M-MOCK", "gross_amount": gross,
            "fraud_status": "accept", "currency": "IDR"})
    }

    fn midtrans_status(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(basic(API_KEY).as_str()) {
            return refused(401, "Access denied due to unauthorized transaction");
        }
        let order_id = r
            .path
            .trim_start_matches("/v2/")
            .trim_end_matches("/status");
        match self.order(order_id) {
            None => (
                404,
                json!({"status_code": "404", "status_message": "Transaction doesn't exist."})
                    .to_string(),
            ),
            Some(order) => (200, Self::midtrans_fields(order_id, &order).to_string()),
        }
    }

    // ----- Xendit

    fn xendit_invoice(order_id: &str, order: &Order) -> Value {
        let status = match order.status {
            OrderStatus::Paid => "PAID",
            OrderStatus::Pending => "PENDING",
            OrderStatus::Expired => "EXPIRED",
        };
        let mut invoice = json!({"id": order.reference, "external_id": order_id,
            "user_id": "mock-user", "status": status, "amount": order.amount,
            "currency": "IDR",
            "invoice_url": format!("https://checkout-staging.xendit.test/web/{}", order.reference)});
        if order.status == OrderStatus::Paid {
            invoice["paid_amount"] = json!(order.amount);
            invoice["payment_method"] = json!("BANK_TRANSFER");
            invoice["payment_channel"] = json!("BCA");
        }
        invoice
    }

    fn xendit_create(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(basic(API_KEY).as_str()) {
            return refused(401, "INVALID_API_KEY");
        }
        let body = r.json();
        let (Some(order_id), Some(amount)) =
            (body["external_id"].as_str(), body["amount"].as_u64())
        else {
            return refused(400, "external_id and amount are required");
        };
        match self.open(order_id, amount, false, "inv-mock-") {
            Err(answer) => answer,
            Ok(order) => (200, Self::xendit_invoice(order_id, &order).to_string()),
        }
    }

    fn xendit_get(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(basic(API_KEY).as_str()) {
            return refused(401, "INVALID_API_KEY");
        }
        let id = r.path.trim_start_matches("/v2/invoices/");
        match self.by_reference(id) {
            None => refused(404, "INVOICE_NOT_FOUND_ERROR"),
            Some((order_id, order)) => (200, Self::xendit_invoice(&order_id, &order).to_string()),
        }
    }

    // ----- Tripay

    fn tripay_transaction(order_id: &str, order: &Order) -> Value {
        let status = match order.status {
            OrderStatus::Paid => "PAID",
            OrderStatus::Pending => "UNPAID",
            OrderStatus::Expired => "EXPIRED",
        };
        // The buyer pays a fee of 750 on top of the order's amount.
        json!({"reference": order.reference, "merchant_ref": order_id,
            "payment_method": "QRIS", "payment_method_code": "QRIS",
            "total_amount": order.amount + 750, "fee_merchant": 0, "fee_customer": 750,
            "total_fee": 750, "amount_received": order.amount, "is_closed_payment": 1,
            "status": status, "paid_at": 1_764_000_000, "note": null})
    }

    fn tripay_create(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(format!("Bearer {API_KEY}").as_str()) {
            return (
                401,
                json!({"success": false, "message": "Invalid API Key"}).to_string(),
            );
        }
        let form: HashMap<String, String> = form_urlencoded::parse(&r.body).into_owned().collect();
        let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let (Some(order_id), Some(amount)) = (
            field("merchant_ref"),
            field("amount").and_then(|a| a.parse::<u64>().ok()),
        ) else {
            return (
                400,
                json!({"success": false, "message": "merchant_ref and amount are required"})
                    .to_string(),
            );
        };
        let signature = hmac_hex(
            PRIVATE_KEY,
            format!("{MERCHANT_CODE}{order_id}{amount}").as_bytes(),
        );
        if field("signature") != Some(signature.as_str()) {
            return (
                400,
                json!({"success": false, "message": "Invalid signature"}).to_string(),
            );
        }
        for required in [
            "method",
            "customer_name",
            "callback_url",
            "order_items[0][name]",
        ] {
            if field(required).is_none() {
                return (
                    400,
                    json!({"success": false, "message": format!("{required} is required")})
                        .to_string(),
                );
            }
        }
        match self.open(order_id, amount, true, "T0001") {
            Err((status, _)) => (
                status,
                json!({"success": false, "message": "Duplicate merchant_ref"}).to_string(),
            ),
            Ok(order) => (
                200,
                json!({"success": true, "message": "", "data": {
                    "reference": order.reference, "merchant_ref": order_id, "amount": amount,
                    "checkout_url": format!("https://tripay.test/checkout/{}", order.reference),
                    "status": "UNPAID"}})
                .to_string(),
            ),
        }
    }

    fn tripay_detail(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(format!("Bearer {API_KEY}").as_str()) {
            return (
                401,
                json!({"success": false, "message": "Invalid API Key"}).to_string(),
            );
        }
        let query = r.path.split_once('?').map_or("", |(_, q)| q);
        let reference = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "reference")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        match self.by_reference(&reference) {
            None => (404, json!({"success": false, "message": "Transaction not found"}).to_string()),
            Some((order_id, order)) => (
                200,
                json!({"success": true, "message": "", "data": Self::tripay_transaction(&order_id, &order)})
                    .to_string(),
            ),
        }
    }

    // ----- notifications

    fn notification(&self, order_id: &str, order: &Order) -> Notification {
        let json_headers = || vec![("content-type".to_string(), "application/json".to_string())];
        match self.protocol {
            Protocol::Duitku => {
                let amount = order.amount.to_string();
                let code = if order.status == OrderStatus::Paid {
                    "00"
                } else {
                    "02"
                };
                let signature = hmac_hex(
                    API_KEY,
                    format!("{MERCHANT_CODE}{amount}{order_id}").as_bytes(),
                );
                let body = form_urlencoded::Serializer::new(String::new())
                    .append_pair("merchantCode", MERCHANT_CODE)
                    .append_pair("amount", &amount)
                    .append_pair("merchantOrderId", order_id)
                    .append_pair("productDetail", "Top up")
                    .append_pair("additionalParam", "")
                    .append_pair("paymentCode", "SP")
                    .append_pair("resultCode", code)
                    .append_pair("merchantUserId", "")
                    .append_pair("reference", &order.reference)
                    .append_pair("signature", &signature)
                    .finish();
                Notification {
                    path: "/callback/duitku".into(),
                    headers: vec![(
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    )],
                    body: body.into_bytes(),
                }
            }
            Protocol::Midtrans => Notification {
                path: "/callback/midtrans".into(),
                headers: json_headers(),
                body: Self::midtrans_fields(order_id, order)
                    .to_string()
                    .into_bytes(),
            },
            Protocol::Xendit => {
                let mut headers = json_headers();
                headers.push(("x-callback-token".into(), CALLBACK_TOKEN.into()));
                Notification {
                    path: "/callback/xendit".into(),
                    headers,
                    body: Self::xendit_invoice(order_id, order)
                        .to_string()
                        .into_bytes(),
                }
            }
            Protocol::Tripay => {
                let body = Self::tripay_transaction(order_id, order).to_string();
                let mut headers = json_headers();
                headers.push(("x-callback-event".into(), "payment_status".into()));
                headers.push((
                    "x-callback-signature".into(),
                    hmac_hex(PRIVATE_KEY, body.as_bytes()),
                ));
                Notification {
                    path: "/callback/tripay".into(),
                    headers,
                    body: body.into_bytes(),
                }
            }
        }
    }
}
