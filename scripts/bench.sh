#!/usr/bin/env bash
# Benchmarks every route on SQLite and Redis plus a native baseline, and writes BENCHMARKS.md.
# Run by hand on an otherwise idle machine; `--quick` for a short smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
ensure_rust
ensure_packages redis-server:redis-server
build_app
# The native baseline logs every request like the components do; keep that out of the table.
exec ./target/host/topup-bench "$@" 2> target/bench-stderr.log
