//! Mock payment gateways: Duitku POP, Midtrans Snap, Xendit Invoices and Tripay closed
//! payments, each as strict as the real one about what it receives (credentials, request
//! signatures, required fields, a repeated order id) and each answering in its own format.
//! A mock never calls back by itself: [`MockGateway::pay`] and [`MockGateway::expire`] change
//! an order and return the notification the gateway would send, signed as it signs it, for
//! the test to deliver (or to drop, as a lost callback).
//!
//! Local mode (`topup-mocks --gateways-from PORT --app URL`, started by `scripts/run.sh`) is
//! the one exception, and only there: a mock started with [`MockGateway::start_local`] also
//! answers `POST /_mock/pay?order=ID` and `POST /_mock/expire?order=ID` by playing the buyer
//! and sending that notification to the app itself (see `local.rs`). A mock started with
//! [`MockGateway::start`] has no such endpoint: it answers 404 like any unknown path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{lock, serve, Received, Reply};

mod local;
mod protocols;

pub use local::{local_app_variables, start_local_gateways};

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

/// The secrets a mock gateway holds (its merchant code is always [`MERCHANT_CODE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// Duitku API key, Midtrans server key, Xendit secret key or Tripay API key.
    pub api_key: String,
    /// Tripay's private key.
    pub private_key: String,
    /// Xendit's callback verification token.
    pub callback_token: String,
}

impl Default for Keys {
    /// The fixed test keys ([`API_KEY`], [`PRIVATE_KEY`], [`CALLBACK_TOKEN`]).
    fn default() -> Self {
        Self {
            api_key: API_KEY.into(),
            private_key: PRIVATE_KEY.into(),
            callback_token: CALLBACK_TOKEN.into(),
        }
    }
}

impl Keys {
    /// Throwaway keys made from one generated secret, as `scripts/run.sh` makes them:
    /// `<secret>-api`, `<secret>-private` and `<secret>-token`.
    pub fn from_secret(secret: &str) -> Self {
        Self {
            api_key: format!("{secret}-api"),
            private_key: format!("{secret}-private"),
            callback_token: format!("{secret}-token"),
        }
    }
}

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
    keys: Keys,
    /// Started by [`MockGateway::start_local`]: has the buyer endpoint.
    local: bool,
    /// Local mode only: the app that `/_mock/pay` and `/_mock/expire` notify.
    app: Mutex<Option<crate::Http>>,
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
    /// Listens on a free loopback port, with the fixed test [`Keys`].
    pub async fn start(protocol: Protocol) -> Result<Self> {
        Self::launch("127.0.0.1:0", protocol, Keys::default(), None).await
    }

    /// Local mode: listens on `addr` with `keys` and also answers `POST /_mock/pay?order=ID`
    /// and `POST /_mock/expire?order=ID` by sending the notification to `app` (its base URL).
    pub async fn start_local(
        addr: &str,
        protocol: Protocol,
        keys: Keys,
        app: &str,
    ) -> Result<Self> {
        Self::launch(addr, protocol, keys, Some(app)).await
    }

    /// Local mode: points `/_mock/pay` and `/_mock/expire` at another app base URL (a mock
    /// started by [`MockGateway::start`] still has no such endpoint).
    pub fn set_app(&self, app: &str) {
        *lock(&self.state.app) = Some(crate::Http::new(app));
    }

    async fn launch(addr: &str, protocol: Protocol, keys: Keys, app: Option<&str>) -> Result<Self> {
        let local = app.is_some();
        let state = Arc::new(GatewayState {
            protocol,
            keys,
            local,
            app: Mutex::new(app.map(crate::Http::new)),
            orders: Mutex::new(HashMap::new()),
            received: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
        });
        let handler = state.clone();
        let addr = serve(
            addr,
            move |received: Received| {
                let state = handler.clone();
                async move {
                    // Local mode's buyer endpoint is not gateway traffic: not recorded.
                    if let Some((status, text)) = state.play_buyer(&received).await {
                        return (status, Reply::Whole(text));
                    }
                    let (status, text) = state.answer(&received);
                    lock(&state.received).push(received);
                    (status, Reply::Whole(text))
                }
            },
            None,
            // Only local mode's buyer endpoint may come without a Content-Length.
            local.then_some("/_mock/"),
        )
        .await?;
        Ok(Self { addr, state })
    }

    /// The gateway it plays.
    pub fn protocol(&self) -> Protocol {
        self.state.protocol
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The app's variables that point it at this mock, with its credentials.
    pub fn app_variables(&self) -> Vec<(&'static str, String)> {
        let url = self.url();
        let keys = &self.state.keys;
        match self.state.protocol {
            Protocol::Duitku => vec![
                ("duitku_base_url", url),
                ("duitku_merchant_code", MERCHANT_CODE.into()),
                ("duitku_api_key", keys.api_key.clone()),
                ("duitku_signature", "hmac".into()),
            ],
            Protocol::Midtrans => vec![
                ("midtrans_snap_url", url.clone()),
                ("midtrans_api_url", url),
                ("midtrans_server_key", keys.api_key.clone()),
            ],
            Protocol::Xendit => vec![
                ("xendit_base_url", url),
                ("xendit_secret_key", keys.api_key.clone()),
                ("xendit_callback_token", keys.callback_token.clone()),
            ],
            Protocol::Tripay => vec![
                ("tripay_base_url", url),
                ("tripay_api_path", "/api-sandbox".into()),
                ("tripay_merchant_code", MERCHANT_CODE.into()),
                ("tripay_api_key", keys.api_key.clone()),
                ("tripay_private_key", keys.private_key.clone()),
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
        self.state
            .settle(order_id, status)
            .unwrap_or_else(|| panic!("no order {order_id} at the mock gateway"))
    }
}

impl GatewayState {
    /// Order `order_id` becomes `status`; its notification, or `None` for an unknown order.
    fn settle(&self, order_id: &str, status: OrderStatus) -> Option<Notification> {
        let order = {
            let mut orders = lock(&self.orders);
            let order = orders.get_mut(order_id)?;
            order.status = status;
            order.clone()
        };
        Some(self.notification(order_id, &order))
    }

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
}
