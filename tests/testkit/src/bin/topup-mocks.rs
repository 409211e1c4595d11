//! `topup-mocks --pg ADDR --bot ADDR [--gateways-from PORT --app URL]`: local stand-ins for
//! the Central PG, the bot and (with `--gateways-from`) Duitku, Midtrans, Xendit and Tripay
//! on PORT..PORT+3, for trying the app out (`scripts/run.sh` starts them when no upstream
//! URLs are set). Each mock gateway's `POST /_mock/pay?order=ID` plays the buyer paying:
//! the gateway's signed notification goes to the app at `--app`.

use anyhow::{Context, Result};
use topup_testkit::mocks::gateways::{start_local_gateways, Keys};
use topup_testkit::mocks::{MockBot, MockPg};

const USAGE: &str = "usage: topup-mocks --pg ADDR --bot ADDR [--gateways-from PORT --app URL]   \
    (secret from SPIN_VARIABLE_SHARED_SECRET; gateway keys from TOPUP_MOCKS_GATEWAY_SECRET)";

fn flag(args: &[String], name: &str) -> Result<Option<String>> {
    let Some(at) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    args.get(at + 1).cloned().map(Some).context(USAGE)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pg = flag(&args, "--pg")?.context(USAGE)?;
    let bot = flag(&args, "--bot")?.context(USAGE)?;
    let secret = std::env::var("SPIN_VARIABLE_SHARED_SECRET")
        .context("set SPIN_VARIABLE_SHARED_SECRET so the mocks can check signatures")?;
    let pg = MockPg::start(&pg, &secret).await?;
    let bot = MockBot::start(&bot, &secret).await?;
    println!(
        "Mock Central PG on {} and mock bot on {}",
        pg.url(),
        bot.url()
    );
    let mut gateways = Vec::new();
    if let Some(first) = flag(&args, "--gateways-from")? {
        let first: u16 = first.parse().context(USAGE)?;
        let app = flag(&args, "--app")?.context(USAGE)?;
        let keys = std::env::var("TOPUP_MOCKS_GATEWAY_SECRET")
            .context("set TOPUP_MOCKS_GATEWAY_SECRET: the mock gateways' keys are made from it")?;
        gateways = start_local_gateways(first, &Keys::from_secret(&keys), &app).await?;
        for gateway in &gateways {
            println!(
                "Mock {} on {} (POST {}/_mock/pay?order=<depositId> pays, /_mock/expire expires)",
                gateway.protocol().name(),
                gateway.url(),
                gateway.url()
            );
        }
    }
    tokio::signal::ctrl_c().await?;
    drop(gateways);
    Ok(())
}
