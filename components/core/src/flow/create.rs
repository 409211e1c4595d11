//! `POST /deposit/create`: one invoice per deposit, even when creates race.
//!
//! A generated id is new by construction: the invoice is created and the deposit stored in
//! one write with its tasks (its expiry, and at a gateway that can be asked its first status
//! check), plus each task's slot number. A caller-chosen id is claimed before the
//! gateway is called: `increment` on `create:{id}` hands out a claim number, and a create owns
//! the id only if it got exactly the number it read plus one; it then holds the id
//! (`Creating`, for the gateway's timeout plus a margin) while the gateway answers. Any other
//! create of the id meanwhile gets 409 at once: `DEPOSIT_CONFLICT` for another user,
//! amount or gateway, `CREATE_IN_PROGRESS` with `Retry-After` for the same. Only the same
//! deposit's create may take over one whose hold ended or that failed; a create whose hold
//! ended or was taken over never writes its invoice.

use crate::config::Config;
use crate::deposit::request::CreateDeposit;
use crate::deposit::{attempt_of, Creation, Deposit, Invoice};
use crate::error::{ApiError, ErrorCode};
use crate::flow::reconcile::first_check;
use crate::gateway::{
    adapter, create_invoice_at, default_product_details, CreatedInvoice, GatewayName, InvoiceOrder,
    PaymentGateway,
};
use crate::ids::{BotId, DepositId};
use crate::platform::Platform;
use crate::store::DepositStore;

/// A deposit whose invoice exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The deposit.
    pub deposit: Deposit,
    /// True when it existed before this request.
    pub replayed: bool,
}

fn in_progress(retry_after_s: u64) -> ApiError {
    ApiError::InProgress {
        code: ErrorCode::CreateInProgress,
        message: "a create of this depositId is waiting for the gateway",
        retry_after_s: retry_after_s.max(1),
    }
}

fn being_removed() -> ApiError {
    ApiError::InProgress {
        code: ErrorCode::DepositExpired,
        message: "the previous deposit with this depositId expired and is being removed",
        retry_after_s: 60,
    }
}

fn conflict(id: &DepositId) -> ApiError {
    ApiError::Conflict {
        code: ErrorCode::DepositConflict,
        message: "depositId already exists with a different userId, amount or gateway".into(),
        detail: Some(serde_json::json!({ "depositId": id })),
    }
}

/// Creates a deposit (or returns the one this request repeats).
pub fn create_deposit(
    platform: &Platform,
    config: &Config,
    input: CreateDeposit,
    bot: BotId,
) -> Result<Created, ApiError> {
    let store = DepositStore::new(platform, config.lifetime()?);
    let gateway = chosen_gateway(config, input.gateway)?;
    // No invoice for a bot its credit could not reach.
    if let Err(unroutable) = config.bot_routes()?.target(&bot) {
        return Err(ApiError::Config(unroutable.config_error()));
    }
    match input.deposit_id.clone() {
        None => create_generated(&store, platform, config, input, gateway, &bot),
        Some(id) => create_chosen(&store, platform, config, input, id, (gateway, &bot)),
    }
}

/// The gateway asked for (it must be enabled), or the default.
fn chosen_gateway(config: &Config, asked: Option<GatewayName>) -> Result<GatewayName, ApiError> {
    let gateways = config.gateways()?;
    match asked {
        None => Ok(gateways.default),
        Some(gateway) if gateways.is_enabled(gateway) => Ok(gateway),
        Some(gateway) => Err(ApiError::field(
            ErrorCode::GatewayDisabled,
            "gateway",
            format!("gateway {gateway} is not enabled on this service"),
        )),
    }
}

fn new_deposit(
    input: &CreateDeposit,
    id: DepositId,
    epoch: u64,
    now: u64,
    creation: (Creation, GatewayName),
    bot: &BotId,
) -> Deposit {
    let (creation, gateway) = creation;
    Deposit {
        deposit_id: id,
        epoch,
        user_id: input.user_id.clone(),
        amount: input.amount,
        product_details: input
            .product_details
            .clone()
            .unwrap_or_else(|| default_product_details(input.amount)),
        email: input.email.clone(),
        msisdn: input.msisdn.clone(),
        created_at: now,
        creation,
        gateway,
        bot: bot.clone(),
    }
}

/// Calls the gateway for `deposit`'s invoice, refusing one that belongs to another deposit.
fn invoice_for(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    deposit: &Deposit,
    input: &CreateDeposit,
) -> Result<CreatedInvoice, ApiError> {
    let gateway = adapter(config, deposit.gateway)?;
    let order = InvoiceOrder {
        deposit_id: &deposit.deposit_id,
        attempt: attempt_of(deposit.creation.token()),
        amount: input.amount,
        product_details: &deposit.product_details,
        user_id: &input.user_id,
        email: input.email.as_deref(),
        phone: input.msisdn.as_deref(),
        public_base_url: config.gateway()?.public_base_url.as_deref(),
        valid_for: config.lifetime()?.invoice_validity(),
    };
    let request = gateway.invoice_request(&order, store.now());
    let invoice = create_invoice_at(&gateway, platform.http, request)
        .map_err(|failure| ApiError::Gateway(failure.detail()))?;
    if let Some(owner) = store.invoice(&invoice.reference)? {
        if owner.deposit_id != deposit.deposit_id {
            return Err(ApiError::Gateway(serde_json::json!({
                "status": 200,
                "reason": "the PG returned a reference that belongs to another deposit",
            })));
        }
    }
    Ok(invoice)
}

/// Marks `deposit` open with the gateway's invoice; returns the invoice's record.
fn open(deposit: &mut Deposit, token: u64, created: CreatedInvoice) -> Invoice {
    let invoice = Invoice {
        deposit_id: deposit.deposit_id.clone(),
        epoch: deposit.epoch,
        user_id: deposit.user_id.clone(),
        amount: deposit.amount,
        reference: created.reference.clone(),
        payment_url: Some(created.payment_url.clone()),
        attempt: attempt_of(token),
        bot: deposit.bot.clone(),
    };
    deposit.creation = Creation::Open {
        token,
        reference: created.reference,
        payment_url: created.payment_url,
    };
    invoice
}

/// Answers with a deposit just written. Its life starts when the invoice is handed out: if
/// the writes took so long (a stalled process) that it would already be over, it starts again.
fn hand_out(
    store: &DepositStore,
    mut deposit: Deposit,
    invoice: &Invoice,
) -> Result<Created, ApiError> {
    if store.now() >= store.expiry_from(deposit.created_at) {
        deposit.created_at = store.now();
        store.save_deposit(&deposit, Some(invoice))?;
    }
    Ok(Created {
        deposit,
        replayed: false,
    })
}

fn create_generated(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    input: CreateDeposit,
    gateway: GatewayName,
    bot: &BotId,
) -> Result<Created, ApiError> {
    let id = DepositId::generate(platform.random);
    let pending = Creation::Abandoned { token: 0 };
    // A generated id is new: its first (and only) deposit.
    let now = store.now();
    let mut deposit = new_deposit(&input, id, now, now, (pending, gateway), bot);
    let invoice = invoice_for(store, platform, config, &deposit, &input)?;
    let invoice = open(&mut deposit, 0, invoice);
    deposit.created_at = store.now();
    let check = first_check(store, config, &deposit)?;
    store.insert_open(&deposit, &invoice, check)?;
    hand_out(store, deposit, &invoice)
}

fn create_chosen(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    input: CreateDeposit,
    id: DepositId,
    (gateway, bot): (GatewayName, &BotId),
) -> Result<Created, ApiError> {
    let now = store.now();
    // Long enough for the slowest gateway's call.
    let lease = config
        .gateway()?
        .create_lease()
        .max(config.gateways()?.timeout + std::time::Duration::from_secs(5));
    let lease_ms = crate::platform::millis(lease);
    let existing = store.deposit(&id)?;
    let mut epoch = None;
    if let Some(existing) = &existing {
        let same = existing.v.user_id == input.user_id
            && existing.v.amount == input.amount
            && existing.v.gateway == gateway
            // Another bot's deposit is never shown or taken over: its id is just taken.
            && existing.v.bot == *bot;
        if now >= existing.exp {
            // Its lifetime is over: it is kept only while something is still owed or
            // unsettled on it, and then removed; only then is the id free for a new deposit.
            // (A create now is a new deposit the bot wants, not the old one's: its invoices
            // can no longer be paid.)
            return Err(being_removed());
        }
        match &existing.v.creation {
            Creation::Open { .. } if same => {
                return Ok(Created {
                    deposit: existing.v.clone(),
                    replayed: true,
                })
            }
            Creation::Open { .. } => return Err(conflict(&id)),
            Creation::Creating { until, .. } if now < *until => {
                return Err(if same {
                    in_progress((until - now).div_ceil(1000))
                } else {
                    conflict(&id)
                });
            }
            // Only the same deposit's create may take over another: a stalled one may still
            // hand out its invoice, so both must be of the same user and amount.
            Creation::Creating { .. } | Creation::Abandoned { .. } if !same => {
                return Err(conflict(&id))
            }
            // A create that failed, or whose hold ended: this one may take over.
            Creation::Creating { .. } | Creation::Abandoned { .. } => {
                epoch = Some(existing.v.epoch);
            }
        }
    }
    if existing.is_none() && store.removal_unfinished(&id)? {
        // A removal that stopped half-way left claims and counters of the old deposit; a new
        // one made now would inherit them. The sweep finishes the removal first.
        return Err(being_removed());
    }
    let claimed = store.creates(&id)?;
    let written = existing.as_ref().map_or(0, |d| d.v.creation.token());
    if claimed != written {
        // Claim `claimed` is taken and not written: its create is between the two, or died
        // there. Take over only a lease after first seeing it so.
        match store.hold(&id)? {
            Some(hold) if hold.token == claimed && now >= hold.since.saturating_add(lease_ms) => {}
            Some(hold) if hold.token == claimed => {
                let left = hold.since.saturating_add(lease_ms) - now;
                return Err(in_progress(left.div_ceil(1000)));
            }
            _ => {
                store.save_hold(
                    &id,
                    crate::store::Hold {
                        token: claimed,
                        since: now,
                    },
                )?;
                return Err(in_progress(lease_ms.div_ceil(1000)));
            }
        }
    }
    let token = store.claim_create(&id)?;
    if token != claimed + 1 {
        return Err(in_progress(1));
    }
    let until = now.saturating_add(lease_ms);
    // Creates of one deposit agree on its epoch even when a stalled one is overtaken, so
    // every invoice they hand out stays payable (one credited, any other refunded). A new
    // deposit's epoch is when it began: never that of an earlier deposit of the id.
    let epoch = epoch.unwrap_or(now);
    let mut deposit = new_deposit(
        &input,
        id.clone(),
        epoch,
        now,
        (Creation::Creating { token, until }, gateway),
        bot,
    );
    store.insert_intent(&deposit)?;
    let still_ours = |store: &DepositStore| -> Result<bool, ApiError> {
        Ok(store.now() < until
            && store
                .deposit(&id)?
                .is_some_and(|d| d.v.creation.token() == token))
    };
    // Overtaken while writing (we stalled past our hold): the newer create owns the id.
    if !still_ours(store)? {
        return Err(in_progress(1));
    }
    let invoice = match invoice_for(store, platform, config, &deposit, &input) {
        Ok(invoice) => invoice,
        Err(error) => {
            // Free the id for the bot's retry at once, unless another create owns it now; the
            // answer is the gateway's failure even if this write fails.
            if still_ours(store).unwrap_or(false) {
                deposit.creation = Creation::Abandoned { token };
                let _ = store.save_deposit(&deposit, None);
            }
            return Err(error);
        }
    };
    if !still_ours(store)? {
        // Our hold ended while the gateway answered: this invoice is never shown.
        return Err(in_progress(1));
    }
    let invoice = open(&mut deposit, token, invoice);
    deposit.created_at = store.now();
    // Before the record that hands the invoice out, which a create's retry shows again: an
    // open deposit always has its check.
    if let Some(check) = first_check(store, config, &deposit)? {
        store.schedule(check)?;
    }
    store.save_deposit(&deposit, Some(&invoice))?;
    hand_out(store, deposit, &invoice)
}
