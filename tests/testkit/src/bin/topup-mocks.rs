//! `topup-mocks --pg ADDR --bot ADDR [--gateways-from PORT --app URL]`: local stand-ins for
//! the Central PG, the bot and (with `--gateways-from`) Duitku, Midtrans, Xendit and Tripay
//! on PORT..PORT+3, for trying the app out (`scripts/run.sh` starts them when no upstream
//! URLs are set). Each mock gateway's `POST /_mock/pay?order=ID` plays the buyer paying:
//! the gateway's signed notification goes to the app at `--app`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::error::ErrorKind;
use clap::Parser;
use topup_testkit::mocks::gateways::{start_local_gateways, Keys};
use topup_testkit::mocks::{MockBot, MockPg};

/// Strict local mocks of the Central PG, the bot and the four payment gateways.
#[derive(Parser)]
#[command(
    name = "topup-mocks",
    version,
    after_help = "Secrets come from the environment only: SPIN_VARIABLE_SHARED_SECRET (the \
        app's shared secret, which the mock PG and bot check) and, with --gateways-from, \
        TOPUP_MOCKS_GATEWAY_SECRET (the mock gateways' keys are made from it)."
)]
struct Cli {
    /// Address of the mock Central PG (port 0: any free port; the line printed says which).
    #[arg(long, value_name = "ADDR")]
    pg: String,
    /// Address of the mock bot.
    #[arg(long, value_name = "ADDR")]
    bot: String,
    /// Also start mock Duitku, Midtrans, Xendit and Tripay on PORT..PORT+3.
    #[arg(long, value_name = "PORT", requires = "app")]
    gateways_from: Option<u16>,
    /// The app's URL, where the mock gateways send their notifications.
    #[arg(long, value_name = "URL", requires = "gateways_from")]
    app: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("topup-mocks: error: {}", one_line(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let secret = std::env::var("SPIN_VARIABLE_SHARED_SECRET")
        .context("set SPIN_VARIABLE_SHARED_SECRET so the mocks can check signatures")?;
    let pg = MockPg::start(&cli.pg, &secret).await?;
    let bot = MockBot::start(&cli.bot, &secret).await?;
    println!(
        "Mock Central PG on {} and mock bot on {}",
        pg.url(),
        bot.url()
    );
    let mut gateways = Vec::new();
    if let (Some(first), Some(app)) = (cli.gateways_from, &cli.app) {
        let keys = std::env::var("TOPUP_MOCKS_GATEWAY_SECRET")
            .context("set TOPUP_MOCKS_GATEWAY_SECRET: the mock gateways' keys are made from it")?;
        gateways = start_local_gateways(first, &Keys::from_secret(&keys), app).await?;
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

// The same command-line conventions as topup-host's (host/src/cli.rs), which this crate does
// not depend on: `--help`/`--version` exit 0, a usage error is one line and exit 2, an error
// is one line and exit 1, never a backtrace.

/// Parses the arguments; a usage error is one line on stderr and exit 2.
fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => match error.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => error.exit(),
            _ => {
                let rendered = error.render().to_string();
                let mut in_usage = false;
                let lines: Vec<&str> = rendered
                    .lines()
                    .map(str::trim)
                    .filter(|line| {
                        if line.starts_with("Usage:") {
                            in_usage = true;
                        } else if line.is_empty() {
                            in_usage = false;
                        }
                        !in_usage && !line.is_empty()
                    })
                    .collect();
                eprintln!("topup-mocks: {}", one_line(&lines.join("\n")));
                std::process::exit(2)
            }
        },
    }
}

/// Lines joined with `; ` (a space after a line ending in `:`).
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}
