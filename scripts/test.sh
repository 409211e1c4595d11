#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing (the wasm32-wasip2
# target, redis-server, openssl), checks formatting and lints, builds the components,
# runs the core's native tests and the end-to-end suite on SQLite and on Redis, then fuzzes
# the app from openapi.json (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
# scripts/fuzz.sh: Python 3.10+ with venv, for schemathesis.
python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
  || python3.11 -c 'import ensurepip' 2>/dev/null || missing+=(python3 python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --profile host -- -D warnings
cargo clippy --target wasm32-wasip2 --release -- -D warnings

echo "== components (wasm32-wasip2, release)"
cargo build --target wasm32-wasip2 --release

echo "== tests: core natively, host, end to end on SQLite and Redis"
cargo test --workspace --profile host

echo "== fuzz: schemathesis from openapi.json against the app on the host"
scripts/fuzz.sh
