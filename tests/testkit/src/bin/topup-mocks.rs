//! `topup-mocks --pg ADDR --bot ADDR`: local stand-ins for the Central PG and the bot, for
//! trying the app out (`scripts/run.sh` starts them when no upstream URLs are set).

use anyhow::{Context, Result};
use topup_testkit::mocks::{MockBot, MockPg};

const USAGE: &str =
    "usage: topup-mocks --pg ADDR --bot ADDR   (secret from SPIN_VARIABLE_SHARED_SECRET)";

fn flag(args: &[String], name: &str) -> Result<String> {
    let at = args.iter().position(|a| a == name).context(USAGE)?;
    args.get(at + 1).cloned().context(USAGE)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pg = flag(&args, "--pg")?;
    let bot = flag(&args, "--bot")?;
    let secret = std::env::var("SPIN_VARIABLE_SHARED_SECRET")
        .context("set SPIN_VARIABLE_SHARED_SECRET so the mocks can check signatures")?;
    let pg = MockPg::start(&pg, &secret).await?;
    let bot = MockBot::start(&bot, &secret).await?;
    println!(
        "Mock Central PG on {} and mock bot on {}",
        pg.url(),
        bot.url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
