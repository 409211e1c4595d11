//! Each gateway's own protocol: what its create, status and notification look like.

use serde_json::{json, Value};
use sha2::Sha512;
use std::collections::HashMap;

use super::*;

impl GatewayState {
    pub(super) fn duitku_create(&self, r: &Received) -> Answer {
        if r.header("content-type") != Some("application/json") {
            return refused(415, "content type must be application/json");
        }
        let timestamp = r.header("x-duitku-timestamp").unwrap_or("");
        let signature = hmac_hex(
            &self.keys.api_key,
            format!("{MERCHANT_CODE}{timestamp}").as_bytes(),
        );
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

    pub(super) fn duitku_status(&self, r: &Received) -> Answer {
        let body = r.json();
        let order_id = body["merchantOrderId"].as_str().unwrap_or("");
        let signature = hmac_hex(
            &self.keys.api_key,
            format!("{MERCHANT_CODE}{order_id}").as_bytes(),
        );
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

    pub(super) fn midtrans_create(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(basic(&self.keys.api_key).as_str()) {
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

    fn midtrans_fields(&self, order_id: &str, order: &Order) -> Value {
        let (transaction, code) = match order.status {
            OrderStatus::Paid => ("settlement", "200"),
            OrderStatus::Pending => ("pending", "201"),
            OrderStatus::Expired => ("expire", "407"),
        };
        let gross = format!("{}.00", order.amount);
        let signature = hex::encode(Sha512::digest(format!(
            "{order_id}{code}{gross}{}",
            self.keys.api_key
        )));
        json!({"transaction_time": "2026-11-25 10:00:00", "transaction_status": transaction,
            "transaction_id": format!("tx-{order_id}"), "status_message": "midtrans payment notification",
            "status_code": code, "signature_key": signature, "payment_type": "qris",
            "order_id": order_id, "merchant_id": "M-MOCK", "gross_amount": gross,
            "fraud_status": "accept", "currency": "IDR"})
    }

    pub(super) fn midtrans_status(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(basic(&self.keys.api_key).as_str()) {
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
            Some(order) => (200, self.midtrans_fields(order_id, &order).to_string()),
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

    pub(super) fn xendit_create(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(basic(&self.keys.api_key).as_str()) {
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

    pub(super) fn xendit_get(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(basic(&self.keys.api_key).as_str()) {
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

    pub(super) fn tripay_create(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(format!("Bearer {}", self.keys.api_key).as_str()) {
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
            &self.keys.private_key,
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

    pub(super) fn tripay_detail(&self, r: &Received) -> Answer {
        if r.header("authorization") != Some(format!("Bearer {}", self.keys.api_key).as_str()) {
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

    pub(super) fn notification(&self, order_id: &str, order: &Order) -> Notification {
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
                    &self.keys.api_key,
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
                body: self
                    .midtrans_fields(order_id, order)
                    .to_string()
                    .into_bytes(),
            },
            Protocol::Xendit => {
                let mut headers = json_headers();
                headers.push(("x-callback-token".into(), self.keys.callback_token.clone()));
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
                    hmac_hex(&self.keys.private_key, body.as_bytes()),
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
