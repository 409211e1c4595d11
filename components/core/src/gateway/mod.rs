//! The payment gateways behind one interface, [`PaymentGateway`]: build the create-invoice
//! request and read its answer, verify and read a notification, build a status query and read
//! its answer. Adapters build requests and read answers only; the flows send them through
//! [`HttpClient`]. One file per adapter: [`central`] (the Central PG, the default), [`duitku`],
//! [`midtrans`], [`xendit`], [`tripay`]; [`notification`] holds the Central PG's callback body.

pub mod central;
pub mod duitku;
pub mod midtrans;
pub mod notification;
pub mod protocol;
pub mod tripay;
pub mod xendit;

use crate::config::{Auth, Config, ConfigError, Gateway};
use crate::deposit::request::CreateDeposit;
use crate::error::ApiError;
use crate::http::{body_excerpt, Request};
use crate::ids::DepositId;
pub use crate::ids::GatewayName;
use crate::platform::{HttpClient, OutboundRequest, OutboundResponse};
pub use protocol::{
    CreatedInvoice, GatewayFailure, InvoiceOrder, NoticeStatus, PaymentGateway, PaymentNotice,
    StatusQuery,
};

/// One of the adapters, chosen at run time. Dispatch is a `match` rather than a trait object
/// so that a component links only the operations it calls (a `dyn` links every method of
/// every adapter: about 40 KiB more in the create and sweep components).
pub enum Adapter<'a> {
    /// The Central PG.
    Central(central::Central<'a>),
    /// Duitku.
    Duitku(&'a crate::config::Duitku),
    /// Midtrans.
    Midtrans(&'a crate::config::Midtrans),
    /// Xendit.
    Xendit(&'a crate::config::Xendit),
    /// Tripay.
    Tripay(&'a crate::config::Tripay),
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
    fn signs_notices(&self) -> bool {
        dispatch!(self, signs_notices())
    }
    fn asks_by_reference(&self) -> bool {
        dispatch!(self, asks_by_reference())
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
        attempt: 0,
        amount: create.amount,
        product_details,
        user_id: &create.user_id,
        email: create.email.as_deref(),
        phone: create.msisdn.as_deref(),
        public_base_url: gateway.public_base_url.as_deref(),
        // The Central PG's create call carries no expiry.
        valid_for: std::time::Duration::ZERO,
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

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::protocol::{base64, basic_auth};
    use super::*;
    use crate::config::Secret;
    use crate::platform::TransportError;

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
