//! What the native binaries (`topup-host`, `topup-bench`) share on the command line: clap's
//! parse with usage errors on one line (exit 2), and errors that end the program on one line
//! (exit 1), never with a backtrace. `topup-mocks` (tests/testkit) keeps a copy of the two
//! functions, as it does not depend on this crate.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

/// Parses this process's arguments into `T`. `--help` and `--version` print to stdout and
/// exit 0; a usage error prints one line to stderr and exits 2.
pub fn parse<T: Parser + CommandFactory>() -> T {
    match T::try_parse() {
        Ok(parsed) => parsed,
        Err(error) => match error.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => error.exit(),
            _ => {
                let program = T::command().get_name().to_string();
                let message = one_line(&error.render().to_string());
                eprintln!("{program}: {message}");
                std::process::exit(2)
            }
        },
    }
}

/// clap's multi-line error as one line: the message and its tips, then where help is, without
/// the usage block.
pub fn one_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    let mut in_usage = false;
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") {
            in_usage = true;
            continue;
        }
        if line.is_empty() {
            in_usage = false;
            continue;
        }
        if !in_usage {
            parts.push(line);
        }
    }
    join(&parts)
}

/// Joins `parts` with `; `, or a space after a part that ends in `:` (a list follows).
fn join(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(part);
    }
    out
}

/// The exit of a program whose work returned `result`: 0, or 1 with `error: …` (the error and
/// its causes on one line) on stderr.
pub fn exit_code(program: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{program}: error: {}", one_line_error(&error));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, `: `-separated, with any line breaks inside them flattened.
pub fn one_line_error(error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    join(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clap_error_is_one_line_without_its_usage() {
        let rendered = "error: unexpected argument '--nope' found\n\n  tip: to pass '--nope' as a value, use '-- --nope'\n\nUsage: topup-host serve [OPTIONS]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "error: unexpected argument '--nope' found; tip: to pass '--nope' as a value, use '-- --nope'; For more information, try '--help'."
        );
    }

    #[test]
    fn an_error_and_its_causes_are_one_line() {
        let error = anyhow::anyhow!("not provided:\n  --pg\n  --bot").context("loading");
        assert_eq!(one_line_error(&error), "loading: not provided: --pg; --bot");
    }
}
