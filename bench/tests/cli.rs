//! `topup-bench`'s command line: help and version on every command, usage errors on one
//! line with exit 2. (Nothing here runs a benchmark.)

#![allow(clippy::expect_used, reason = "a test fails by panicking")]

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_topup-bench"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run topup-bench")
}

#[test]
fn help_and_version_on_every_command() {
    for args in [&["--help"][..], &["serve-native", "--help"]] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: topup-bench"));
    }
    let help = String::from_utf8_lossy(&bench(&["--help"]).stdout).into_owned();
    for flag in [
        "--quick",
        "--history-only",
        "--history-sizes",
        "--history-sweep-only",
        "--history",
        "--versus-only",
        "--costs-only",
        "--builds",
        "--note",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
    for args in [&["--version"][..], &["serve-native", "--version"]] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    for (args, says) in [
        (&["--quik"][..], "--quik"),
        (&["--history-sizes=ten"], "ten"),
        (&["serve-native", "127.0.0.1:0"], "MANIFEST"),
        (&["--versus-only", "--costs-only"], "--costs-only"),
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(
            stderr.starts_with("topup-bench: error: ") && stderr.contains(says),
            "{stderr:?}"
        );
    }
}
