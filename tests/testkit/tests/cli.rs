//! `topup-mocks`'s command line: help and version, usage errors on one line with exit 2, a
//! missing secret on one line with exit 1.

#![allow(clippy::expect_used, reason = "a test fails by panicking")]

use std::process::{Command, Output};

fn mocks(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_topup-mocks"));
    command.args(args).env_clear().env("RUST_BACKTRACE", "1");
    command.output().expect("run topup-mocks")
}

fn stderr_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
    assert!(lines[0].starts_with("topup-mocks: error: "), "{stderr:?}");
    lines[0].to_string()
}

#[test]
fn help_and_version() {
    let help = mocks(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--pg <ADDR>",
        "--bot <ADDR>",
        "--gateways-from <PORT>",
        "--app <URL>",
    ] {
        assert!(text.contains(flag), "{flag}: {text}");
    }
    let version = mocks(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    for (args, says) in [
        (&[][..], "--pg"),
        (&["--pg", "127.0.0.1:0"], "--bot"),
        (
            &[
                "--pg",
                "127.0.0.1:0",
                "--bot",
                "127.0.0.1:0",
                "--gateways-from",
                "3083",
            ],
            "--app",
        ),
        (
            &[
                "--pg",
                "127.0.0.1:0",
                "--bot",
                "127.0.0.1:0",
                "--gateways-from",
                "port",
            ],
            "port",
        ),
    ] {
        let out = mocks(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr_line(&out).contains(says), "{args:?}");
    }
}

#[test]
fn a_missing_secret_is_one_line_and_exit_1() {
    let out = mocks(&["--pg", "127.0.0.1:0", "--bot", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("SPIN_VARIABLE_SHARED_SECRET"));
}
