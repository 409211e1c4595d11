//! The adversary: it holds every genuine notification a gateway sent and replays one at any
//! time, to any era of an id, with every edit that keeps it valid under that gateway's proof:
//! fields the gateway does not sign changed or dropped, digits moved between signed fields
//! that are joined without a separator, fresh timestamps and nonces where they are not
//! signed, and (having seen Xendit's static token) any Xendit notice it likes.

use serde_json::{json, Value};
use topup_core::http::Request;

use crate::gateways::{self, Gw, Notice, XENDIT_TOKEN};

use super::*;

impl Sim {
    /// Replays one captured notification, edited.
    pub(super) fn strike(&mut self) {
        if self.captured.is_empty() {
            return;
        }
        let pick = self.rng(|r| r.below(self.captured.len() as u64)) as usize;
        let original = self.captured[pick].clone();
        let edited = match original.gw {
            Gw::Central => self.edit_central(&original.request),
            Gw::Duitku => self.edit_duitku(&original.request),
            Gw::Midtrans => self.edit_midtrans(&original.request),
            Gw::Xendit => self.forge_xendit(&original.request),
            // Tripay signs the whole body: only the genuine bytes pass.
            Gw::Tripay => original.request.clone(),
        };
        self.world.count(|c| c.adversary += 1);
        self.spawn(Call::Adversary(Box::new(Notice {
            gw: original.gw,
            request: edited,
        })));
    }

    /// An adversary's notice is answered: whatever it says, it is never a server error
    /// (but for a gateway's status API that could not confirm it).
    pub(super) fn on_adversary(&mut self, notice: &Notice, response: Option<Response>) {
        if let Some(r) = response {
            let code = r.json_body()["error"].clone();
            let expected = r.status < 500
                || code == "GATEWAY_UNCONFIRMED"
                || code == "STORE_UNAVAILABLE"
                || code == "CORRUPT_RECORD";
            if !expected && !self.world.faults_on.get() {
                self.problems.push(format!(
                    "an adversary's {} notice was answered {}: {}",
                    notice.gw.name(),
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
            }
        }
    }

    /// Some id a bot was shown (any era), or `fallback`.
    fn some_id(&mut self, fallback: &str) -> String {
        if self.shown.is_empty() {
            return fallback.to_string();
        }
        let k = self.rng(|r| r.below(self.shown.len() as u64)) as usize;
        self.shown[k].deposit_id.clone()
    }

    /// The Central PG's signature covers the body: with the body scheme, the timestamp and
    /// nonce are the adversary's to choose; with the timestamped one they must stay.
    fn edit_central(&mut self, request: &Request) -> Request {
        let mut replay = request.clone();
        if self.rng(|r| r.chance(0.7)) {
            let now = self.world.now().to_string();
            let nonce = format!("adv-{}", self.rng(|r| r.next_u64()));
            replay
                .headers
                .retain(|(n, _)| n != "x-timestamp" && n != "x-nonce");
            replay = replay
                .with_header("x-timestamp", &now)
                .with_header("x-nonce", &nonce);
        }
        replay
    }

    fn edit_duitku(&mut self, request: &Request) -> Request {
        let mut fields: Vec<(String, String)> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        let get = |fields: &[(String, String)], name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let set = |fields: &mut Vec<(String, String)>, name: &str, value: Option<String>| {
            fields.retain(|(k, _)| k != name);
            if let Some(value) = value {
                fields.push((name.to_string(), value));
            }
        };
        let code = ["00", "01", "02"][self.rng(|r| r.below(3)) as usize];
        set(&mut fields, "resultCode", Some(code.into()));
        match self.rng(|r| r.below(3)) {
            0 => set(&mut fields, "reference", None),
            1 => {
                let other = self.some_reference();
                set(&mut fields, "reference", other);
            }
            _ => {}
        }
        // merchantCode + amount + merchantOrderId, unseparated: move the boundary.
        if self.rng(|r| r.chance(0.5)) {
            let joined = format!(
                "{}{}",
                get(&fields, "amount"),
                get(&fields, "merchantOrderId")
            );
            if joined.len() > 1 {
                let k = self.rng(|r| r.range(1, joined.len() as u64 - 1)) as usize;
                set(&mut fields, "amount", Some(joined[..k].to_string()));
                set(
                    &mut fields,
                    "merchantOrderId",
                    Some(joined[k..].to_string()),
                );
            }
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        request.clone().with_body(body)
    }

    fn edit_midtrans(&mut self, request: &Request) -> Request {
        let mut body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let statuses = [
            "settlement",
            "capture",
            "pending",
            "deny",
            "cancel",
            "expire",
        ];
        body["transaction_status"] = json!(statuses[self.rng(|r| r.below(6)) as usize]);
        body["fraud_status"] = json!(["accept", "challenge"][self.rng(|r| r.below(2)) as usize]);
        // order_id + status_code + gross_amount, unseparated: move the boundaries.
        if self.rng(|r| r.chance(0.4)) {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let joined = format!(
                "{}{}{}",
                text(&body["order_id"]),
                text(&body["status_code"]),
                text(&body["gross_amount"])
            );
            if joined.len() > 2 {
                let a = self.rng(|r| r.range(1, joined.len() as u64 - 2)) as usize;
                let b = self.rng(|r| r.range(a as u64 + 1, joined.len() as u64 - 1)) as usize;
                body["order_id"] = json!(&joined[..a]);
                body["status_code"] = json!(&joined[a..b]);
                body["gross_amount"] = json!(&joined[b..]);
            }
        }
        request.clone().with_body(body.to_string())
    }

    /// Xendit's token is the whole proof, and the adversary has seen it.
    fn forge_xendit(&mut self, request: &Request) -> Request {
        let mut body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if self.rng(|r| r.chance(0.5)) {
            let id = self.some_id("D0");
            body["external_id"] = json!(id);
        }
        if self.rng(|r| r.chance(0.5)) {
            body["id"] = json!(self.some_reference());
        }
        body["status"] = json!(["PAID", "SETTLED", "EXPIRED"][self.rng(|r| r.below(3)) as usize]);
        if self.rng(|r| r.chance(0.5)) {
            let amount = [5_000u64, 7_000, 10_000, 25_000][self.rng(|r| r.below(4)) as usize];
            body["amount"] = json!(amount);
            body["paid_amount"] = json!(amount);
        }
        gateways::json_notice("/callback/xendit", body.to_string())
            .with_header("x-callback-token", XENDIT_TOKEN)
    }

    /// Some reference a gateway ever handed out.
    fn some_reference(&mut self) -> Option<String> {
        let ledger = self.world.ledger.borrow();
        if ledger.txns.is_empty() {
            return None;
        }
        let k = self.world.rng(|r| r.below(ledger.txns.len() as u64)) as usize;
        Some(ledger.txns[k].reference.clone())
    }
}
