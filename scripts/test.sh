#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing (the wasm32-wasip2
# target, redis-server, openssl), checks formatting and lints, builds the components (both
# builds: WASIp2, the default, and WASIp3 for Spin 4.1+), runs the core's native tests and
# the end-to-end suite on SQLite and on Redis once per build and once more with every key in
# one label (spin.single-label.toml), including the
# example receivers (examples/) against the app, with their dependencies cached in target/,
# generates a Python client and TypeScript types from openapi.json and uses them
# (scripts/clients.sh), then fuzzes the app from openapi.json (scripts/fuzz.sh; both install
# Python's venv, and clients.sh Node's npm, if missing). The operator console's page is
# driven in Debian's headless Chromium with playwright-core (scripts/browser-setup.sh
# installs both) within the first end-to-end run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
ensure_rust
ensure_packages redis-server:redis-server openssl:openssl

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --profile host -- -D warnings
cargo clippy --target wasm32-wasip2 --release -- -D warnings
cargo clippy --target wasm32-wasip2 --profile release-p3 --features topup-spin/p3 -- -D warnings

echo "== example receivers: dependencies (npm, PyPI, crates.io; cached in target/receivers) and lints"
scripts/receivers.sh
cargo fmt --manifest-path examples/rust-axum/Cargo.toml -- --check
cargo clippy --quiet --locked --manifest-path examples/rust-axum/Cargo.toml \
  --target-dir target/receivers/rust-axum/target -- -D warnings

echo "== build: components (wasm32-wasip2: release, and release-p3 for WASIp3) and native binaries"
build_app

echo "== operator console's browser test: Chromium (Debian) and playwright-core (npm)"
scripts/browser-setup.sh

echo "== tests: core natively, host, end to end on SQLite and Redis (the console in Chromium too), example receivers"
CONSOLE_BROWSER=1 cargo test --workspace --profile host

echo "== tests: the end-to-end suite again, on the WASIp3 build (spin.p3.toml; same test binary)"
E2E_BUILD=p3 cargo test --workspace --profile host --test e2e

echo "== tests: the end-to-end suite on one key-value label (spin.single-label.toml; WASIp2 build)"
E2E_LABELS=single cargo test --workspace --profile host --test e2e

echo "== clients generated from openapi.json: Python (used against the app), TypeScript (compiled)"
scripts/clients.sh

echo "== fuzz: schemathesis from openapi.json against the app on the host"
scripts/fuzz.sh
