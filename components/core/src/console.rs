//! What the operator console shows: where each deposit stands ([`State`]), pages of deposits
//! newest first ([`list`]) and one deposit's story ([`timeline`]).
//!
//! The pages need no index of their own: every live deposit has a task in the expiry
//! schedule, written in the same `set_many` as its record (see [`crate::store::schedule`]),
//! in the bucket of its record's expiry, its creation plus `deposit_ttl_days`. Reading that
//! schedule backwards from the newest bucket lists deposits newest first; a page reads its
//! own slots and records and a bounded number of empty markers, whatever the store holds.

use serde::Serialize;
use serde_json::{json, Value};

use crate::deposit::note::NoteKind;
use crate::flow::life::UNSETTLED_GRACE_MS;
use crate::ids::{BotId, DepositId, GatewayName, Reference};
use crate::platform::StoreError;
use crate::store::schedule::{Before, Task, EXPIRY};
use crate::store::DepositStore;
use crate::view::{read_shown, DepositView, Shown};

/// Most deposits one page holds.
pub const MAX_PAGE: usize = 100;
/// Store reads one page may spend; past it the page ends early with a cursor.
pub const READ_BUDGET: u32 = 1_500;
/// Reads counted for loading one deposit (record, credit, notes).
const READS_A_DEPOSIT: u32 = 5;
/// Credit attempts after which an owed credit needs attention (a PAID callback makes up to
/// three at once).
pub const ATTENTION_ATTEMPTS: u32 = 5;

/// Where a deposit stands, as an operator sorts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    /// Invoice created, not paid.
    Pending,
    /// The gateway reported a failure (a later payment still wins).
    Failed,
    /// The gateway said the invoice can no longer be paid.
    Expired,
    /// Paid, the bot has not accepted the credit yet; retries go on.
    Owed,
    /// Paid and credited.
    Credited,
    /// Paid, automatic retries gave up: a manual resend is needed.
    Exhausted,
}

/// A filter on what a deposit's state and notes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// [`State::Pending`].
    Pending,
    /// Any paid deposit (owed, credited or exhausted).
    Paid,
    /// [`State::Credited`].
    Credited,
    /// [`State::Owed`].
    Owed,
    /// [`State::Exhausted`].
    Exhausted,
    /// A payment beside the credited one, not marked refunded.
    RefundDue,
    /// A payment with the wrong amount, not yet closed.
    Review,
    /// [`State::Failed`].
    Failed,
    /// [`State::Expired`].
    Expired,
    /// Needs a hand: exhausted, owed past [`ATTENTION_ATTEMPTS`], a refund due or a review.
    Attention,
}

impl StatusFilter {
    /// Every filter by its query name.
    pub const ALL: &'static [(&'static str, StatusFilter)] = &[
        ("pending", Self::Pending),
        ("paid", Self::Paid),
        ("credited", Self::Credited),
        ("owed", Self::Owed),
        ("exhausted", Self::Exhausted),
        ("refund_due", Self::RefundDue),
        ("review", Self::Review),
        ("failed", Self::Failed),
        ("expired", Self::Expired),
        ("attention", Self::Attention),
    ];

    /// The filter named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn admits(self, shown: &Shown, state: State) -> bool {
        let view = &shown.view;
        let refund_due = view.refunds_due.iter().any(|r| r.handled.is_none());
        let review = view.reviews.iter().any(|r| r.closed.is_none());
        match self {
            Self::Pending => state == State::Pending,
            Self::Paid => matches!(state, State::Owed | State::Credited | State::Exhausted),
            Self::Credited => state == State::Credited,
            Self::Owed => state == State::Owed,
            Self::Exhausted => state == State::Exhausted,
            Self::RefundDue => refund_due,
            Self::Review => review,
            Self::Failed => state == State::Failed,
            Self::Expired => state == State::Expired,
            Self::Attention => {
                state == State::Exhausted
                    || refund_due
                    || review
                    || (state == State::Owed
                        && view.credit_attempts.unwrap_or(0) >= ATTENTION_ATTEMPTS)
            }
        }
    }
}

/// The state of a shown deposit.
pub fn state_of(shown: &Shown) -> State {
    let view = &shown.view;
    match &shown.credit {
        Some(credit) if credit.is_credited() => State::Credited,
        Some(credit) if credit.is_exhausted() => State::Exhausted,
        Some(_) => State::Owed,
        None if view.status == crate::view::DepositStatus::Failed => {
            let closed = shown.notes.iter().any(|n| {
                matches!(n.kind, NoteKind::Failed { closed: true, .. })
                    && Some(&n.reference) == view.reference.as_ref()
            });
            if closed {
                State::Expired
            } else {
                State::Failed
            }
        }
        None => State::Pending,
    }
}

/// One row of a page.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Deposit id.
    pub deposit_id: DepositId,
    /// User id.
    pub user_id: String,
    /// The bot that made it.
    pub bot: BotId,
    /// The gateway that bills it.
    pub gateway: GatewayName,
    /// Amount in rupiah.
    pub amount: u64,
    /// Where it stands.
    pub state: State,
    /// PENDING, PAID or FAILED, as `/deposit/status` says.
    pub status: crate::view::DepositStatus,
    /// Whether the bot accepted the credit.
    pub credited: bool,
    /// Credit deliveries made so far.
    pub credit_attempts: Option<u32>,
    /// Creation time (Unix ms).
    pub created_at: u64,
    /// Gateway reference.
    pub reference: Option<Reference>,
    /// Payments to refund, not yet marked handled.
    pub refunds_due: usize,
    /// Payments with the wrong amount, not yet closed.
    pub reviews: usize,
}

impl Summary {
    fn of(shown: &Shown) -> Self {
        let view = &shown.view;
        Self {
            deposit_id: view.deposit_id.clone(),
            user_id: view.user_id.clone(),
            bot: shown.deposit.bot.clone(),
            gateway: shown.deposit.gateway,
            amount: view.amount,
            state: state_of(shown),
            status: view.status,
            credited: view.credited,
            credit_attempts: view.credit_attempts,
            created_at: view.created_at,
            reference: view.reference.clone(),
            refunds_due: view
                .refunds_due
                .iter()
                .filter(|r| r.handled.is_none())
                .count(),
            reviews: view.reviews.iter().filter(|r| r.closed.is_none()).count(),
        }
    }
}

/// What a page asks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// State or notes.
    pub status: Option<StatusFilter>,
    /// Gateway.
    pub gateway: Option<GatewayName>,
    /// User id, exactly.
    pub user_id: Option<String>,
    /// Bot.
    pub bot: Option<BotId>,
    /// Created at or after (Unix ms).
    pub from: Option<u64>,
    /// Created at or before (Unix ms).
    pub to: Option<u64>,
    /// Most rows (1..=[`MAX_PAGE`]).
    pub limit: usize,
    /// Where the previous page ended.
    pub cursor: Option<PageCursor>,
}

/// Where a page ended: an opaque `"{bucket}.{slot}"` to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor(Before);

impl PageCursor {
    /// Reads a cursor a page handed out.
    pub fn parse(text: &str) -> Option<Self> {
        let (bucket, slot) = text.split_once('.')?;
        let all_digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(bucket) || !all_digits(slot) {
            return None;
        }
        Some(Self(Before {
            bucket: bucket.parse().ok()?,
            slot: slot.parse().ok()?,
        }))
    }
}

impl std::fmt::Display for PageCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0.bucket, self.0.slot)
    }
}

/// A page of deposits, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// Always true.
    pub ok: bool,
    /// The rows.
    pub deposits: Vec<Summary>,
    /// The next page, while there may be more (a page may end early, short of `limit`, when
    /// its reads ran out).
    pub next: Option<String>,
}

/// A page of deposits matching `query`, newest first (by creation; a deposit kept past its
/// lifetime because something is owed on it comes first).
pub fn list(store: &DepositStore, query: &Query) -> Result<Page, StoreError> {
    let now = store.now();
    let ttl = store.ttl_ms();
    // Every live deposit's expiry task lies between where the sweep stands and the furthest a
    // kept deposit is looked at again.
    let floor = match query.from {
        Some(from) => EXPIRY.bucket_of(from.saturating_add(ttl)),
        None => EXPIRY.cursor(store.records, now)?.bucket,
    };
    let top = Before {
        bucket: EXPIRY.bucket_of(now.saturating_add(ttl.max(UNSETTLED_GRACE_MS))) + 1,
        slot: u64::MAX,
    };
    let from = query.cursor.map_or(top, |c| c.0);
    let mut budget = READ_BUDGET;
    let mut seen: Vec<DepositId> = Vec::new();
    let mut rows: Vec<Summary> = Vec::new();
    let limit = query.limit.clamp(1, MAX_PAGE);
    let next = EXPIRY.walk_back(
        store.claims,
        store.records,
        from,
        floor,
        &mut budget,
        |bucket, task, budget| {
            let Task::Expire { id } = task else {
                return Ok(true);
            };
            if seen.contains(&id) {
                return Ok(true);
            }
            *budget = budget.saturating_sub(READS_A_DEPOSIT);
            let Some(deposit) = store.deposit(&id).ok().flatten() else {
                return Ok(true);
            };
            // A deposit within its lifetime is listed at its record's own task; one kept past
            // it, at the task that looks at it next.
            if deposit.exp > now && EXPIRY.bucket_of(deposit.exp) != bucket {
                return Ok(true);
            }
            seen.push(id);
            let d = &deposit.v;
            let admitted = query.gateway.is_none_or(|g| g == d.gateway)
                && query.user_id.as_ref().is_none_or(|u| *u == d.user_id)
                && query.bot.as_ref().is_none_or(|b| *b == d.bot)
                && query.from.is_none_or(|t| d.created_at >= t)
                && query.to.is_none_or(|t| d.created_at <= t);
            if !admitted {
                return Ok(true);
            }
            // One record that cannot be read does not hide the others (the sweep quarantines
            // it; its detail answers CORRUPT_RECORD).
            let shown = match read_shown(store, deposit) {
                Ok(Some(shown)) => shown,
                Ok(None) | Err(StoreError::Corrupt(_)) => return Ok(true),
                Err(error) => return Err(error),
            };
            let state = state_of(&shown);
            if query.status.is_none_or(|f| f.admits(&shown, state)) {
                rows.push(Summary::of(&shown));
            }
            Ok(rows.len() < limit)
        },
    )?;
    Ok(Page {
        ok: true,
        deposits: rows,
        next: next.map(|before| PageCursor(before).to_string()),
    })
}

/// The rows of `page` as CSV (RFC 4180, a header line first). A cell a spreadsheet would
/// read as a formula (`=`, `+`, `-`, `@`, tab, CR first) is prefixed with `'`: user ids come
/// from the bots.
pub fn csv(page: &Page) -> String {
    fn cell(out: &mut String, value: &str) {
        let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{value}")
        } else {
            value.to_string()
        };
        if guarded.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&guarded.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&guarded);
        }
    }
    let mut out = String::from(
        "depositId,userId,bot,gateway,amount,state,status,credited,creditAttempts,createdAt,reference,refundsDue,reviews\r\n",
    );
    for row in &page.deposits {
        let cells = [
            row.deposit_id.to_string(),
            row.user_id.clone(),
            row.bot.to_string(),
            row.gateway.as_str().to_string(),
            row.amount.to_string(),
            json!(row.state).as_str().unwrap_or_default().to_string(),
            json!(row.status).as_str().unwrap_or_default().to_string(),
            row.credited.to_string(),
            row.credit_attempts
                .map(|a| a.to_string())
                .unwrap_or_default(),
            row.created_at.to_string(),
            row.reference
                .as_ref()
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
            row.refunds_due.to_string(),
            row.reviews.to_string(),
        ];
        for (i, value) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            cell(&mut out, value);
        }
        out.push_str("\r\n");
    }
    out
}

/// One event of a deposit's story.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When (Unix ms).
    pub at: u64,
    /// `created`, `notice`, `paid`, `credit`, `credited` or `action`.
    pub kind: &'static str,
    /// What happened.
    pub detail: Value,
}

/// A deposit's story, oldest first: its creation, each notice that changed no state, its
/// payment, its credit's last attempt and success, and what operators did.
pub fn timeline(shown: &Shown) -> Vec<Event> {
    let mut events = vec![Event {
        at: shown.deposit.created_at,
        kind: "created",
        detail: json!({
            "gateway": shown.deposit.gateway,
            "amount": shown.deposit.amount,
            "reference": shown.deposit.invoice().map(|i| i.reference),
        }),
    }];
    for note in &shown.notes {
        let (kind, detail) = match &note.kind {
            NoteKind::Failed {
                result_code,
                closed,
            } => (
                "notice",
                json!({ "verdict": if *closed { "CLOSED" } else { "FAILED" }, "resultCode": result_code }),
            ),
            NoteKind::WrongAmount { received } => (
                "notice",
                json!({ "verdict": "WRONG_AMOUNT", "amount": received }),
            ),
            NoteKind::Paid {
                payment_method,
                result_code,
            } => (
                "notice",
                json!({ "verdict": "PAID_NOT_RECORDED", "paymentMethod": payment_method, "resultCode": result_code }),
            ),
            NoteKind::Operator(o) => (
                "action",
                json!({ "action": o.action.as_str(), "by": o.by, "reason": o.reason }),
            ),
        };
        let mut detail = detail;
        if let Value::Object(map) = &mut detail {
            map.insert("reference".into(), json!(note.reference));
        }
        events.push(Event {
            at: note.at,
            kind,
            detail,
        });
    }
    if let Some(credit) = &shown.credit {
        events.push(Event {
            at: credit.paid_at,
            kind: "paid",
            detail: json!({ "reference": credit.reference, "paymentMethod": credit.payment_method }),
        });
        if credit.attempts > 0 {
            events.push(Event {
                at: credit.credited_at.unwrap_or(credit.paid_at),
                kind: "credit",
                detail: json!({ "attempts": credit.attempts, "result": credit.last_result }),
            });
        }
        if let Some(at) = credit.credited_at {
            events.push(Event {
                at,
                kind: "credited",
                detail: json!({ "reference": credit.reference }),
            });
        }
    }
    events.sort_by_key(|e| e.at);
    events
}

/// One deposit as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    /// Always true.
    pub ok: bool,
    /// The deposit: its status view, with its bot, gateway and state.
    pub deposit: DetailView,
    /// Its story.
    pub timeline: Vec<Event>,
}

/// The status view with what the console adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailView {
    /// The bot that made it.
    pub bot: BotId,
    /// The gateway that bills it.
    pub gateway: GatewayName,
    /// Where it stands.
    pub state: State,
    /// What `/deposit/status` shows.
    #[serde(flatten)]
    pub view: DepositView,
}

impl Detail {
    /// The detail of a shown deposit.
    pub fn of(shown: Shown) -> Self {
        let timeline = timeline(&shown);
        let state = state_of(&shown);
        Self {
            ok: true,
            deposit: DetailView {
                bot: shown.deposit.bot,
                gateway: shown.deposit.gateway,
                state,
                view: shown.view,
            },
            timeline,
        }
    }
}
