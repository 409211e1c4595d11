#!/usr/bin/env bash
# Benchmarks every route on SQLite and Redis, the original worker side by side, synced
# transactions per route and both builds, and writes BENCHMARKS.md (about 10 minutes; --quick
# about 3). Options go to topup-bench (`scripts/bench.sh --help`): --versus-only,
# --costs-only, --builds, --history-only, --history, --note TEXT.
#
# The worker (shared/peer-worker, run on workerd) is copied into target/peer-worker and its
# node_modules installed there with `npm ci` (shared/ is never written). Set PEER_WORKER to
# its folder when it is not at ../shared/peer-worker or ../../shared/peer-worker; without
# Node/npm or the folder, the side by side is reported as not measured.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
ensure_rust
ensure_packages redis-server:redis-server
build_app

peer_source() {
  local dir
  for dir in "${PEER_WORKER:-}" ../shared/peer-worker ../../shared/peer-worker; do
    if [ -n "$dir" ] && [ -f "$dir/run.sh" ] && [ -f "$dir/package-lock.json" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

prepare_peer() {
  local source copy=target/peer-worker
  source="$(peer_source)" || { echo "bench: no shared/peer-worker found; the side by side is skipped" >&2; return 0; }
  command -v npm >/dev/null || { echo "bench: npm missing; the side by side is skipped" >&2; return 0; }
  # A fresh copy when the worker's files changed (node_modules kept when the lock is the same).
  mkdir -p "$copy"
  if ! cmp -s "$source/package-lock.json" "$copy/package-lock.json"; then
    rm -rf "$copy/node_modules"
  fi
  (cd "$source" && tar cf - --exclude=node_modules --exclude=.wrangler .) | (cd "$copy" && tar xf -)
  if [ ! -x "$copy/node_modules/.bin/wrangler" ]; then
    echo "bench: npm ci in $copy (first run only)" >&2
    (cd "$copy" && npm ci --no-audit --no-fund >&2)
  fi
}
prepare_peer

# The native baseline logs every request like the components do; keep that out of the table.
exec ./target/host/topup-bench "$@" 2> target/bench-stderr.log
