//! Local mode (`scripts/run.sh` through `topup-mocks`): the four mock gateways on fixed
//! ports, and the buyer's side of a payment. `POST /_mock/pay?order=ID` (or `/_mock/expire`)
//! settles the order at the mock and sends the gateway's signed notification to the app's
//! callback route for that gateway, answering with what the app answered. Only mocks started
//! with [`MockGateway::start_local`] have these paths; everything else stays as strict.

use serde_json::json;

use super::*;

impl GatewayState {
    /// Answers local mode's buyer endpoint; `None` for every other request (or outside
    /// local mode), which then goes to the gateway's own protocol.
    pub(super) async fn play_buyer(&self, r: &Received) -> Option<Answer> {
        if !self.local {
            return None;
        }
        let app = lock(&self.app).clone()?;
        let (path, query) = r.path.split_once('?').unwrap_or((r.path.as_str(), ""));
        let status = match (r.method.as_str(), path) {
            ("POST", "/_mock/pay") => OrderStatus::Paid,
            ("POST", "/_mock/expire") => OrderStatus::Expired,
            _ => return None,
        };
        let order_id = form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "order")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        let Some(notification) = self.settle(&order_id, status) else {
            return Some(refused(
                404,
                &format!("no order {order_id:?} at this mock gateway (?order=<depositId>)"),
            ));
        };
        let headers: Vec<(&str, &str)> = notification
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let sent = app
            .try_send(
                "POST",
                &notification.path,
                &headers,
                notification.body.clone(),
            )
            .await;
        Some(match sent {
            Ok(reply) => (
                200,
                json!({"order": order_id, "notified": notification.path,
                    "appStatus": reply.status,
                    "appAnswer": String::from_utf8_lossy(&reply.body)})
                .to_string(),
            ),
            Err(error) => refused(502, &format!("the app did not answer: {error}")),
        })
    }
}

/// Starts the four mock gateways of local mode on `127.0.0.1:first_port` and the three
/// ports after it (Duitku, Midtrans, Xendit, Tripay; port 0: free ports), holding `keys`
/// and notifying the app at `app`. `topup-mocks --gateways-from` calls this.
pub async fn start_local_gateways(
    first_port: u16,
    keys: &Keys,
    app: &str,
) -> Result<Vec<MockGateway>> {
    let mut gateways = Vec::new();
    for (offset, protocol) in (0u16..).zip(Protocol::ALL) {
        let port = if first_port == 0 {
            0
        } else {
            first_port
                .checked_add(offset)
                .ok_or_else(|| anyhow::anyhow!("port {first_port} + {offset} is out of range"))?
        };
        let addr = format!("127.0.0.1:{port}");
        gateways.push(MockGateway::start_local(&addr, protocol, keys.clone(), app).await?);
    }
    Ok(gateways)
}

/// The app's variables for local mode against `gateways`: every gateway enabled (Central PG
/// stays the default), `public_base_url` = `app` (Duitku and Tripay need one), and each
/// gateway's URLs and keys. `scripts/run.sh` exports the same.
pub fn local_app_variables(gateways: &[MockGateway], app: &str) -> Vec<(&'static str, String)> {
    let names: Vec<&str> = gateways.iter().map(|g| g.protocol().name()).collect();
    let mut vars = vec![
        ("gateways_enabled", format!("central,{}", names.join(","))),
        ("public_base_url", app.to_string()),
    ];
    for gateway in gateways {
        vars.extend(gateway.app_variables());
    }
    vars
}
