//! `topup-host`'s command line: help and version on every command, the README's flags, usage
//! errors on one line with exit 2, and a failure to start on one line with exit 1 (no
//! backtrace even when RUST_BACKTRACE asks for one).

#![allow(clippy::expect_used, reason = "a test fails by panicking")]

use std::path::Path;
use std::process::{Command, Output};

fn host(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_topup-host"));
    command.args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.envs(env.iter().copied());
    command.output().expect("run topup-host")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn manifest() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../spin.toml")
        .display()
        .to_string()
}

#[test]
fn help_and_version_on_every_command() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["cloud-manifest", "--help"],
        &["help", "serve"],
    ] {
        let out = host(args, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("Usage: topup-host"), "{args:?}");
    }
    for args in [
        &["--version"][..],
        &["serve", "--version"],
        &["cloud-manifest", "--version"],
    ] {
        let out = host(args, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            text(&out.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{args:?}"
        );
    }
}

#[test]
fn serve_help_lists_the_readme_flags() {
    let help = text(&host(&["serve", "--help"], &[]).stdout);
    for flag in [
        "--manifest <FILE>",
        "--runtime-config-file <FILE>",
        "--listen <ADDR>",
        "--sweep-every <DURATION>",
        "--drain-timeout <DURATION>",
        "--metrics <ADDR>",
        "--extra-ca <FILE>",
        "--store-timeout <DURATION>",
        "--stats-file <FILE>",
        "--clock-offset-file <FILE>",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}:\n{help}");
    }
    for default in [
        "[default: spin.toml]",
        "[default: 127.0.0.1:3000]",
        "[default: 30s]",
        "[default: 2s]",
    ] {
        assert!(help.contains(default), "serve --help lacks {default}");
    }
}

/// One line on stderr, starting with the program's name.
fn one_error_line(out: &Output) -> String {
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
    assert!(lines[0].starts_with("topup-host: error: "), "{stderr:?}");
    lines[0].to_string()
}

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    for (args, env, says) in [
        (&["serve", "--nope"][..], &[][..], "--nope"),
        (&["serve", "--sweep-every", "5x"], &[], "5x"),
        (&["serve", "--listen"], &[], "--listen"),
        (&["bogus"], &[], "bogus"),
        // The environment equivalent is read like the flag.
        (
            &["serve"],
            &[("TOPUP_DRAIN_TIMEOUT", "soon")],
            "--drain-timeout",
        ),
    ] {
        let out = host(args, env);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        let line = one_error_line(&out);
        assert!(line.contains(says), "{line}");
        assert!(out.stdout.is_empty());
    }
    // No command at all: the help, as a usage error.
    let out = host(&[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage: topup-host <COMMAND>"));
}

#[test]
fn a_failure_to_start_is_one_line_and_exit_1_without_a_backtrace() {
    let manifest = manifest();
    let out = host(
        &["serve", "--manifest", &manifest, "--listen", "127.0.0.1:0"],
        &[("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")],
    );
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out);
    for variable in ["shared_secret", "central_pg_base_url", "bot_backend_url"] {
        assert!(line.contains(variable), "{line}");
    }
    let out = host(
        &["cloud-manifest", "--manifest", "/nonexistent/spin.toml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(one_error_line(&out).contains("/nonexistent/spin.toml"));
}
