//! `POST /deposit/create`: validate, create the invoice at the PG, store the deposit.

use serde_json::json;

use super::{serve, Route};
use crate::config::Config;
use crate::deposit::{generate_deposit_id, CreateDeposit, Deposit, DepositStatus};
use crate::error::ApiError;
use crate::gateway::{create_invoice, default_product_details, invoice_request};
use crate::http::{Request, Response};
use crate::platform::Platform;
use crate::storage::DepositStore;

const ROUTE: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: true,
    json_body: true,
};

/// Serves `/deposit/create`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, create)
}

fn create(request: &Request, platform: &Platform, config: &Config) -> Result<Response, ApiError> {
    let input = CreateDeposit::parse(&request.body, config)?;
    let store = DepositStore::new(platform, config);
    let now = platform.clock.now_ms();

    if let Some(id) = &input.deposit_id {
        if let Some(existing) = store.load(id, now)? {
            let same = existing.deposit.user_id == input.user_id
                && existing.deposit.amount == input.amount;
            if !same {
                return Err(ApiError::Conflict {
                    code: "DEPOSIT_CONFLICT",
                    message: "depositId already exists with a different userId or amount".into(),
                    detail: Some(json!({ "depositId": id })),
                });
            }
            return Ok(created(&existing.deposit, true));
        }
    }

    let deposit_id = input
        .deposit_id
        .clone()
        .unwrap_or_else(|| generate_deposit_id(platform.random));
    let product_details = input
        .product_details
        .clone()
        .unwrap_or_else(|| default_product_details(input.amount));
    let invoice = create_invoice(
        platform.http,
        invoice_request(config, &deposit_id, &input, &product_details, now),
    )
    .map_err(|failure| ApiError::Gateway(failure.detail()))?;

    if let Some(owner) = store.resolve_reference(&invoice.reference, now)? {
        if owner != deposit_id {
            return Err(ApiError::Gateway(json!({
                "status": 200,
                "reason": "the PG returned a reference that belongs to another deposit",
            })));
        }
    }

    let deposit = Deposit {
        deposit_id,
        user_id: input.user_id,
        amount: input.amount,
        status: DepositStatus::Pending,
        reference: invoice.reference,
        payment_url: invoice.payment_url,
        created_at: now,
        product_details,
        email: input.email,
        msisdn: input.msisdn,
        callback_received: false,
        failed_at: None,
        result_code: None,
        review: None,
        ignored_events: Vec::new(),
        refunds_due: Vec::new(),
    };
    store.insert(&deposit, now)?;
    Ok(created(&deposit, false))
}

fn created(deposit: &Deposit, replayed: bool) -> Response {
    let mut body = json!({
        "ok": true,
        "depositId": deposit.deposit_id,
        "reference": deposit.reference,
        "paymentUrl": deposit.payment_url,
    });
    if replayed {
        body["replayed"] = json!(true);
    }
    Response::json(200, &body)
}
