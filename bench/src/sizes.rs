//! Sizes: each built component, and the store after many paid and credited deposits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use topup_core::bot::DeliveryOutcome;
use topup_core::credit::{AttemptKind, Credit, PaymentFacts};
use topup_core::deposit::Creation;
use topup_core::envelope::Envelope;
use topup_core::ids::Reference;
use topup_core::store::keys;

use crate::report::{Fact, Report};
use crate::stack::{root, used_memory, Backend, Stack};

/// The shipped components, as their `.wasm` files are named.
const COMPONENTS: [&str; 15] = [
    "health",
    "deposit_create",
    "payment_callback",
    "deposit_status",
    "sweep",
    "manual_retry",
    "openapi",
    "admin",
    "admin_action",
    "console",
    "alerts",
    "callback_duitku",
    "callback_midtrans",
    "callback_xendit",
    "callback_tripay",
];

/// The size of every built component.
pub fn components(report: &mut Report) -> Result<()> {
    for component in COMPONENTS {
        let path = root().join(format!("target/wasm32-wasip2/release/{component}.wasm"));
        let bytes = std::fs::metadata(&path)
            .with_context(|| format!("{} missing: run scripts/bench.sh", path.display()))?
            .len();
        report.fact(Fact::WasmSize { component, bytes });
    }
    Ok(())
}

/// What `n` paid and credited deposits leave in `default`: record, invoice, credit hint and
/// success (the payment claim and schedule slots are not counted).
fn credited_deposits(n: usize) -> Result<Vec<(String, Vec<u8>)>> {
    let config = topup_core::testing::test_config();
    let delivery = config.delivery().map_err(|e| anyhow::anyhow!("{e}"))?;
    let ttl = config
        .lifetime()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .deposit_ttl_ms;
    let mut entries = Vec::with_capacity(4 * n);
    for i in 0..n {
        let mut deposit =
            topup_core::testing::sample_deposit(&format!("DEP{:016X}", i as u64 * 7919), 50_000);
        deposit.user_id = format!("{}", 100_000_000 + i);
        let reference = Reference::parse(&format!("DS{:010}{}", i, deposit.deposit_id))
            .context("a plain ASCII reference")?;
        deposit.creation = Creation::Open {
            token: 0,
            payment_url: format!("https://app.duitku.com/redirect_checkout?reference={reference}"),
            reference: reference.clone(),
        };
        deposit.created_at = 1_795_000_000_000 + i as u64;
        let invoice = deposit
            .invoice()
            .context("an open deposit has its invoice")?;
        let facts = PaymentFacts {
            paid_at: deposit.created_at + 60_000,
            payment_method: Some("BC".into()),
            result_code: Some("00".into()),
        };
        let mut credit = Credit::new(&invoice, facts, 0, Duration::from_secs(30));
        credit.record(
            &DeliveryOutcome::Accepted,
            1,
            AttemptKind::Inline,
            deposit.created_at + 60_300,
            delivery,
        );
        let exp = deposit.created_at + ttl;
        let id = deposit.deposit_id.clone();
        entries.extend([
            (keys::deposit(&id), Envelope::new(&deposit, exp).encode()),
            (
                keys::reference(&reference),
                Envelope::new(&invoice, exp).encode(),
            ),
            (
                keys::credit(&id, 0),
                Envelope::new(&credit, u64::MAX).encode(),
            ),
            (
                keys::credited(&id),
                Envelope::new(&credit, u64::MAX).encode(),
            ),
        ]);
    }
    Ok(entries)
}

/// Store size after `n` paid and credited deposits, on each backend.
pub async fn store(n: usize, report: &mut Report) -> Result<()> {
    let entries = credited_deposits(n)?;
    for backend in Backend::ALL {
        let stack = Stack::new(backend).await?;
        let store: Arc<dyn topup_host::kv::Backend> = match &stack.redis {
            None => topup_host::kv::open_sqlite(&stack.dir.join("size.db"), "default")?,
            Some(redis) => topup_host::kv::open_redis(&redis.url(0))?,
        };
        let before = stack
            .redis
            .as_ref()
            .map(used_memory)
            .transpose()?
            .unwrap_or(0);
        for chunk in entries.chunks(3000) {
            store
                .set_many(chunk.to_vec())
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        let bytes = match &stack.redis {
            None => std::fs::metadata(stack.dir.join("size.db"))?.len(),
            Some(redis) => used_memory(redis)?.saturating_sub(before),
        };
        report.fact(Fact::StoreSize {
            backend,
            deposits: n as u64,
            bytes,
        });
    }
    Ok(())
}
