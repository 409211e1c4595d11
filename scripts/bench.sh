#!/usr/bin/env bash
# Benchmarks every route on SQLite and Redis plus a native baseline, and writes BENCHMARKS.md.
# Run by hand on an otherwise idle machine; `--quick` for a short smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
if ! command -v redis-server >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server
fi
cargo build --target wasm32-wasip2 --release
cargo build --profile host -p topup-host -p topup-bench
# The native baseline logs every request like the components do; keep that out of the table.
exec ./target/host/topup-bench "$@" 2> target/bench-stderr.log
