//! The payment gateways behind one interface, [`PaymentGateway`]: build the create-invoice
//! request and read its answer, verify and read a notification, build a status query and read
//! its answer. Adapters build requests and read answers only; the flows send them through
//! [`HttpClient`]. One file per adapter: [`central`] (the Central PG, the default), [`duitku`],
//! [`midtrans`], [`xendit`], [`tripay`]; [`notification`] holds the Central PG's callback body.

pub mod central;
pub mod duitku;
pub mod midtrans;
pub mod notification;
pub mod tripay;
pub mod xendit;

use std::fmt;

use serde_json::{json, Map, Value};

use crate::config::{Auth, Config, ConfigError, Gateway, Secret};
use crate::deposit::request::CreateDeposit;
use crate::error::ApiError;
use crate::http::{body_excerpt, Request};
use crate::ids::{DepositId, Reference};
use crate::platform::{HttpClient, OutboundRequest, OutboundResponse, TransportError};
use notification::{CallbackStatus, PaymentCallback};

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

/// The gateways this service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayName {
    /// The Central PG (Duitku-compatible, run by the seller); the default.
    Central,
    /// Duitku POP.
    Duitku,
    /// Midtrans Snap.
    Midtrans,
    /// Xendit Invoices.
    Xendit,
    /// Tripay closed payments.
    Tripay,
}

impl GatewayName {
    /// Every gateway, in the order they are documented.
    pub const ALL: [GatewayName; 5] = [
        GatewayName::Central,
        GatewayName::Duitku,
        GatewayName::Midtrans,
        GatewayName::Xendit,
        GatewayName::Tripay,
    ];

    /// The name used in variables, requests and routes.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayName::Central => "central",
            GatewayName::Duitku => "duitku",
            GatewayName::Midtrans => "midtrans",
            GatewayName::Xendit => "xendit",
            GatewayName::Tripay => "tripay",
        }
    }

    /// The gateway called `name` (exact, lower case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// The path of this gateway's callback route.
    pub fn callback_path(self) -> &'static str {
        match self {
            GatewayName::Central => "/internal/payment-callback",
            GatewayName::Duitku => "/callback/duitku",
            GatewayName::Midtrans => "/callback/midtrans",
            GatewayName::Xendit => "/callback/xendit",
            GatewayName::Tripay => "/callback/tripay",
        }
    }
}

impl Default for GatewayName {
    /// Records written before there were several gateways are the Central PG's.
    fn default() -> Self {
        GatewayName::Central
    }
}

impl GatewayName {
    /// Whether this is the Central PG (records of the default gateway omit the field).
    pub fn is_central(&self) -> bool {
        *self == GatewayName::Central
    }
}

impl fmt::Display for GatewayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a gateway is asked to bill: one deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceOrder<'a> {
    /// Our deposit id, sent as the gateway's order id.
    pub deposit_id: &'a DepositId,
    /// Amount in rupiah.
    pub amount: u64,
    /// What the buyer sees.
    pub product_details: &'a str,
    /// The bot's user.
    pub user_id: &'a str,
    /// Buyer's e-mail, when the bot sent one.
    pub email: Option<&'a str>,
    /// Buyer's phone number, when the bot sent one.
    pub phone: Option<&'a str>,
    /// This app's public URL (no trailing slash); the gateway's callback route hangs off it.
    pub public_base_url: Option<&'a str>,
}

impl InvoiceOrder<'_> {
    /// The callback URL of `gateway` on this app, when the public URL is known.
    pub fn callback_url(&self, gateway: GatewayName) -> Option<String> {
        self.public_base_url
            .map(|base| format!("{base}{}", gateway.callback_path()))
    }
}

/// Which transaction a status query asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusQuery<'a> {
    /// Our deposit id (the gateway's order id).
    pub deposit_id: &'a DepositId,
    /// The gateway's reference of the invoice.
    pub reference: &'a Reference,
}

/// What a notification or a status answer says about a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeStatus {
    /// Money received.
    Paid,
    /// Payment failed, was denied or cancelled.
    Failed,
    /// The invoice expired unpaid.
    Expired,
    /// Nothing final yet (or nothing this service acts on, such as a refund).
    Pending,
}

/// A verified notification or status answer, the same for every gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotice {
    /// Our deposit id, when the gateway sent it.
    pub deposit_id: Option<DepositId>,
    /// The gateway's reference, when it is the one stored for the invoice.
    pub reference: Option<Reference>,
    /// What happened.
    pub status: NoticeStatus,
    /// The gateway's own status or result code, kept in notes.
    pub result_code: Option<String>,
    /// Amount as sent, and its integer value when it is a whole number.
    pub amount: Option<(String, Option<u64>)>,
    /// Payment method.
    pub payment_method: Option<String>,
}

impl PaymentNotice {
    /// "Nothing final yet", when the gateway does not know the transaction yet.
    pub fn pending() -> Self {
        Self {
            deposit_id: None,
            reference: None,
            status: NoticeStatus::Pending,
            result_code: None,
            amount: None,
            payment_method: None,
        }
    }

    /// The money path's input (`apply_callback`) for a notice from `gateway`; `None` for a
    /// notice that changes nothing. An expiry is recorded as a failure (both only add notes
    /// and never undo a payment).
    pub fn into_callback(self, gateway: GatewayName) -> Option<PaymentCallback> {
        let status = match self.status {
            NoticeStatus::Paid => CallbackStatus::Paid,
            NoticeStatus::Failed | NoticeStatus::Expired => CallbackStatus::Failed,
            NoticeStatus::Pending => return None,
        };
        Some(PaymentCallback {
            gateway,
            order_id: self.deposit_id,
            reference: self.reference,
            status,
            result_code: self.result_code,
            amount: self.amount,
            payment_method: self.payment_method,
        })
    }
}

impl From<PaymentCallback> for PaymentNotice {
    fn from(callback: PaymentCallback) -> Self {
        Self {
            deposit_id: callback.order_id,
            reference: callback.reference,
            status: match callback.status {
                CallbackStatus::Paid => NoticeStatus::Paid,
                CallbackStatus::Failed => NoticeStatus::Failed,
            },
            result_code: callback.result_code,
            amount: callback.amount,
            payment_method: callback.payment_method,
        }
    }
}

/// One payment gateway's protocol. Builds requests and reads answers; never does I/O.
pub trait PaymentGateway {
    /// Which gateway this is.
    fn name(&self) -> GatewayName;

    /// The create-invoice request for `order`; `now` is epoch milliseconds.
    fn invoice_request(&self, order: &InvoiceOrder, now: u64) -> OutboundRequest;

    /// The invoice in a 2xx create answer, or why there is none.
    fn read_invoice(&self, body: &[u8]) -> Result<CreatedInvoice, &'static str>;

    /// Verifies a notification (raw body and headers) and reads it. Anything not proven to
    /// come from the gateway is a 401 (`INVALID_SIGNATURE`).
    fn read_notice(&self, request: &Request) -> Result<PaymentNotice, ApiError>;

    /// The status query for a transaction; `None` when the gateway has none.
    fn status_request(&self, query: &StatusQuery, now: u64) -> Option<OutboundRequest>;

    /// The notice in a status answer (any HTTP status: some say "not yet" with a 404).
    fn read_status(&self, response: &OutboundResponse) -> Result<PaymentNotice, &'static str>;
}

impl<T: PaymentGateway + ?Sized> PaymentGateway for &T {
    fn name(&self) -> GatewayName {
        (**self).name()
    }
    fn invoice_request(&self, order: &InvoiceOrder, now: u64) -> OutboundRequest {
        (**self).invoice_request(order, now)
    }
    fn read_invoice(&self, body: &[u8]) -> Result<CreatedInvoice, &'static str> {
        (**self).read_invoice(body)
    }
    fn read_notice(&self, request: &Request) -> Result<PaymentNotice, ApiError> {
        (**self).read_notice(request)
    }
    fn status_request(&self, query: &StatusQuery, now: u64) -> Option<OutboundRequest> {
        (**self).status_request(query, now)
    }
    fn read_status(&self, response: &OutboundResponse) -> Result<PaymentNotice, &'static str> {
        (**self).read_status(response)
    }
}

/// One of the adapters, chosen at run time. Dispatch is a `match` rather than a trait object
/// so that a component links only the operations it calls (a `dyn` links every method of
/// every adapter: about 40 KiB more in the create and sweep components).
pub enum Adapter<'a> {
    /// The Central PG.
    Central(central::Central<'a>),
    /// Duitku.
    Duitku(&'a duitku::Duitku),
    /// Midtrans.
    Midtrans(&'a midtrans::Midtrans),
    /// Xendit.
    Xendit(&'a xendit::Xendit),
    /// Tripay.
    Tripay(&'a tripay::Tripay),
}

/// Calls `$method` on whichever adapter `$adapter` holds.
macro_rules! dispatch {
    ($adapter:expr, $method:ident($($arg:expr),*)) => {
        match $adapter {
            Adapter::Central(g) => g.$method($($arg),*),
            Adapter::Duitku(g) => g.$method($($arg),*),
            Adapter::Midtrans(g) => g.$method($($arg),*),
            Adapter::Xendit(g) => g.$method($($arg),*),
            Adapter::Tripay(g) => g.$method($($arg),*),
        }
    };
}

impl PaymentGateway for Adapter<'_> {
    fn name(&self) -> GatewayName {
        dispatch!(self, name())
    }
    fn invoice_request(&self, order: &InvoiceOrder, now: u64) -> OutboundRequest {
        dispatch!(self, invoice_request(order, now))
    }
    fn read_invoice(&self, body: &[u8]) -> Result<CreatedInvoice, &'static str> {
        dispatch!(self, read_invoice(body))
    }
    fn read_notice(&self, request: &Request) -> Result<PaymentNotice, ApiError> {
        dispatch!(self, read_notice(request))
    }
    fn status_request(&self, query: &StatusQuery, now: u64) -> Option<OutboundRequest> {
        dispatch!(self, status_request(query, now))
    }
    fn read_status(&self, response: &OutboundResponse) -> Result<PaymentNotice, &'static str> {
        dispatch!(self, read_status(response))
    }
}

/// The adapter of `gateway`, built from the configuration the route read.
pub fn adapter(config: &Config, gateway: GatewayName) -> Result<Adapter<'_>, ConfigError> {
    Ok(match gateway {
        GatewayName::Central => Adapter::Central(central::Central {
            auth: config.central_auth()?,
            gateway: config.gateway()?,
        }),
        GatewayName::Duitku => Adapter::Duitku(config.duitku()?),
        GatewayName::Midtrans => Adapter::Midtrans(config.midtrans()?),
        GatewayName::Xendit => Adapter::Xendit(config.xendit()?),
        GatewayName::Tripay => Adapter::Tripay(config.tripay()?),
    })
}

/// Sends a create-invoice request and reads the answer with `gateway`.
pub fn create_invoice_at(
    gateway: &impl PaymentGateway,
    http: &dyn HttpClient,
    request: OutboundRequest,
) -> Result<CreatedInvoice, GatewayFailure> {
    send_create(http, request, |body| gateway.read_invoice(body))
}

fn send_create(
    http: &dyn HttpClient,
    request: OutboundRequest,
    read: impl Fn(&[u8]) -> Result<CreatedInvoice, &'static str>,
) -> Result<CreatedInvoice, GatewayFailure> {
    let response = http.send(request).map_err(GatewayFailure::Transport)?;
    if !(200..300).contains(&response.status) {
        return Err(GatewayFailure::Status {
            status: response.status,
            body: body_excerpt(&response.body),
        });
    }
    read(&response.body).map_err(|reason| GatewayFailure::Malformed {
        status: response.status,
        reason,
        body: body_excerpt(&response.body),
    })
}

/// Asks `gateway` for a transaction's status; `Ok(None)` when it has no status query.
pub fn query_status(
    gateway: &impl PaymentGateway,
    http: &dyn HttpClient,
    query: &StatusQuery,
    now: u64,
) -> Result<Option<PaymentNotice>, GatewayFailure> {
    let Some(request) = gateway.status_request(query, now) else {
        return Ok(None);
    };
    let response = http.send(request).map_err(GatewayFailure::Transport)?;
    gateway
        .read_status(&response)
        .map(Some)
        .map_err(|reason| GatewayFailure::Malformed {
            status: response.status,
            reason,
            body: body_excerpt(&response.body),
        })
}

/// Default product description when the bot sends none.
pub fn default_product_details(amount: u64) -> String {
    format!("Top up saldo Rp {amount}")
}

/// The Central PG's signed create-invoice request.
pub fn invoice_request(
    auth: &Auth,
    gateway: &Gateway,
    deposit_id: &DepositId,
    create: &CreateDeposit,
    product_details: &str,
    now: u64,
) -> OutboundRequest {
    let order = InvoiceOrder {
        deposit_id,
        amount: create.amount,
        product_details,
        user_id: &create.user_id,
        email: create.email.as_deref(),
        phone: create.msisdn.as_deref(),
        public_base_url: gateway.public_base_url.as_deref(),
    };
    central::Central { auth, gateway }.invoice_request(&order, now)
}

/// Sends a Central PG create-invoice request and reads the invoice from the answer.
pub fn create_invoice(
    http: &dyn HttpClient,
    request: OutboundRequest,
) -> Result<CreatedInvoice, GatewayFailure> {
    send_create(http, request, central::read_invoice)
}

/// A checked invoice: `reference` a valid reference, `payment_url` an http(s) URL.
fn checked_invoice(
    reference: Option<&str>,
    payment_url: Option<&str>,
) -> Result<CreatedInvoice, &'static str> {
    let reference = reference
        .and_then(Reference::parse)
        .ok_or("reference missing or invalid")?;
    let payment_url = payment_url
        .filter(|u| (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 2048)
        .ok_or("paymentUrl missing or not an http(s) URL")?;
    Ok(CreatedInvoice {
        reference,
        payment_url: payment_url.to_string(),
    })
}

/// A JSON object body, or why not.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ApiError::InvalidJson("expected a JSON object".into())),
        Err(e) => Err(ApiError::InvalidJson(e.to_string())),
    }
}

/// `Authorization: Basic base64(user:)`: Midtrans and Xendit take the secret key as the user
/// name and an empty password.
fn basic_auth(user: &Secret) -> String {
    let mut credentials = user.expose().to_vec();
    credentials.push(b':');
    format!("Basic {}", base64(&credentials))
}

/// Standard base64 with padding. Written here: the `base64` crate's engine added about
/// 7 KiB to each component that calls Midtrans or Xendit.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A notice's order id: a valid deposit id, or a 400 naming `field`.
fn deposit_id_field(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<DepositId, ApiError> {
    notification::text(fields, field)?
        .and_then(|id| DepositId::parse(&id))
        .ok_or_else(|| {
            ApiError::field(
                "INVALID_CALLBACK",
                field,
                format!("{field} is missing or not a valid deposit id"),
            )
        })
}

/// An optional reference field: absent, or a valid reference (else a 400 naming `field`).
fn reference_field(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Reference>, ApiError> {
    match notification::text(fields, field)? {
        None => Ok(None),
        Some(r) => Reference::parse(&r).map(Some).ok_or_else(|| {
            ApiError::field("INVALID_CALLBACK", field, format!("{field} is not valid"))
        }),
    }
}

/// Refuses a PAID notice without an amount: the amount is always checked against the deposit.
fn paid_needs_amount(
    notice: PaymentNotice,
    field: &'static str,
) -> Result<PaymentNotice, ApiError> {
    if notice.status == NoticeStatus::Paid && notice.amount.is_none() {
        return Err(ApiError::field(
            "INVALID_CALLBACK",
            field,
            format!("a paid notification must carry {field}"),
        ));
    }
    Ok(notice)
}

/// A single-valued request header, or a 400.
fn one_header<'r>(request: &'r Request, name: &'static str) -> Result<Option<&'r str>, ApiError> {
    crate::routes::header(request, name)
}

/// Whether the request's content type is `essence` (parameters ignored).
fn content_type_is(request: &Request, essence: &str) -> Result<bool, ApiError> {
    let value = one_header(request, "content-type")?.unwrap_or("");
    let given = value.split(';').next().unwrap_or("").trim();
    Ok(given.eq_ignore_ascii_case(essence))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 section 10 test vectors.
    #[test]
    fn base64_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(
            basic_auth(&Secret::new("SB-Mid-server-TEST")),
            "Basic U0ItTWlkLXNlcnZlci1URVNUOg=="
        );
    }
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
            gateway: None,
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
