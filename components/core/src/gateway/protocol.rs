//! What every gateway adapter shares: the interface ([`PaymentGateway`]), the order it bills,
//! the notice it reads, and small readers of gateway bodies.

use serde_json::{json, Map, Value};

use super::notification::{self, CallbackStatus, PaymentCallback};
use crate::config::Secret;
use crate::error::{ApiError, ErrorCode};
use crate::http::Request;
pub use crate::ids::GatewayName;
use crate::ids::{DepositId, Reference};
use crate::platform::{OutboundRequest, OutboundResponse, TransportError};

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

/// What a gateway is asked to bill: one deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceOrder<'a> {
    /// Our deposit id, sent as the gateway's order id.
    pub deposit_id: &'a DepositId,
    /// Which create of the deposit asks (`Invoice::attempt`; Duitku's order id names it).
    pub attempt: u64,
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
    /// How long the invoice may be paid: a gateway that can be asked must stop taking payment
    /// within this, so that asking it afterwards tells how the invoice ended.
    pub valid_for: std::time::Duration,
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
    /// Which create of the deposit made the invoice (`Invoice::attempt`).
    pub attempt: u64,
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
            closed: self.status == NoticeStatus::Expired,
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

    /// Whether a notice's proof covers every field that decides the money (order, amount and
    /// status). When it does not, a notice is only a prompt to ask the status API.
    fn signs_notices(&self) -> bool;

    /// Whether its status query names the invoice (its reference) rather than our order id.
    fn asks_by_reference(&self) -> bool;

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
    fn signs_notices(&self) -> bool {
        (**self).signs_notices()
    }
    fn asks_by_reference(&self) -> bool {
        (**self).asks_by_reference()
    }
    fn status_request(&self, query: &StatusQuery, now: u64) -> Option<OutboundRequest> {
        (**self).status_request(query, now)
    }
    fn read_status(&self, response: &OutboundResponse) -> Result<PaymentNotice, &'static str> {
        (**self).read_status(response)
    }
}

/// A checked invoice: `reference` a valid reference, `payment_url` an http(s) URL.
pub(super) fn checked_invoice(
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
pub(super) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ApiError::InvalidJson("expected a JSON object".into())),
        Err(e) => Err(ApiError::InvalidJson(e.to_string())),
    }
}

/// The fields of a status query's 2xx JSON answer (what every gateway's status API returns).
pub(super) fn status_fields(
    response: &OutboundResponse,
) -> Result<Map<String, Value>, &'static str> {
    if !(200..300).contains(&response.status) {
        return Err("non-2xx response");
    }
    json_object(&response.body).map_err(|_| "body is not a JSON object")
}

/// `Authorization: Basic base64(user:)`: Midtrans and Xendit take the secret key as the user
/// name and an empty password.
pub(super) fn basic_auth(user: &Secret) -> String {
    let mut credentials = user.expose().to_vec();
    credentials.push(b':');
    format!("Basic {}", base64(&credentials))
}

/// Standard base64 with padding. Written here: the `base64` crate's engine added about
/// 7 KiB to each component that calls Midtrans or Xendit.
pub(super) fn base64(bytes: &[u8]) -> String {
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
pub(super) fn deposit_id_field(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<DepositId, ApiError> {
    notification::text(fields, field)?
        .and_then(|id| DepositId::parse(&id))
        .ok_or_else(|| {
            ApiError::field(
                ErrorCode::InvalidCallback,
                field,
                format!("{field} is missing or not a valid deposit id"),
            )
        })
}

/// An optional reference field: absent, or a valid reference (else a 400 naming `field`).
pub(super) fn reference_field(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Reference>, ApiError> {
    match notification::text(fields, field)? {
        None => Ok(None),
        Some(r) => Reference::parse(&r).map(Some).ok_or_else(|| {
            ApiError::field(
                ErrorCode::InvalidCallback,
                field,
                format!("{field} is not valid"),
            )
        }),
    }
}

/// Refuses a PAID notice without an amount: the amount is always checked against the deposit.
pub(super) fn paid_needs_amount(
    notice: PaymentNotice,
    field: &'static str,
) -> Result<PaymentNotice, ApiError> {
    if notice.status == NoticeStatus::Paid && notice.amount.is_none() {
        return Err(ApiError::field(
            ErrorCode::InvalidCallback,
            field,
            format!("a paid notification must carry {field}"),
        ));
    }
    Ok(notice)
}

/// A single-valued request header, or a 400.
pub(super) fn one_header<'r>(
    request: &'r Request,
    name: &'static str,
) -> Result<Option<&'r str>, ApiError> {
    crate::error::header(request, name)
}

/// Whether the request's content type is `essence` (parameters ignored).
pub(super) fn content_type_is(request: &Request, essence: &str) -> Result<bool, ApiError> {
    let value = one_header(request, "content-type")?.unwrap_or("");
    let given = value.split(';').next().unwrap_or("").trim();
    Ok(given.eq_ignore_ascii_case(essence))
}
