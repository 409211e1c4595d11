#!/usr/bin/env bash
# Runs the app locally on the SQLite default (runtime-config.toml).
# With the Spin CLI on PATH: `spin build` + `spin up`. Without it: the same components on
# our wasmtime runtime (host/), which follows Spin's behaviour.
#
# On the wasmtime runtime the credit sweep runs every 60 s inside the host (SWEEP_EVERY=30s
# changes it, SWEEP_EVERY= turns it off); with `spin up`, schedule it yourself
# (docs/operations.md, "Scheduling the sweep"). METRICS=127.0.0.1:9464 also serves Prometheus metrics there.
#
# Upstreams: set SPIN_VARIABLE_SHARED_SECRET, SPIN_VARIABLE_CENTRAL_PG_BASE_URL and
# SPIN_VARIABLE_BOT_BACKEND_URL to talk to a real Central PG and bot. Leave the URLs unset to
# get local mock PG and bot (ports 3081/3082) and a generated secret in .spin/dev-secret,
# plus mock Duitku, Midtrans, Xendit and Tripay (ports 3083-3086), all enabled, with keys
# made from a generated secret in .spin/dev-gateway-secret. `POST <mock>/_mock/pay?order=ID`
# plays the buyer paying: the mock sends its signed callback to this app.
#
# BUILD=p3 serves the WASIp3 build (spin.p3.toml, for Spin 4.1+) instead of the default one.
set -euo pipefail
cd "$(dirname "$0")/.."
listen="${LISTEN:-127.0.0.1:3000}"
manifest=spin.toml
if [ "${BUILD:-}" = p3 ]; then manifest=spin.p3.toml; fi
sweep_every="${SWEEP_EVERY-60s}"

source scripts/setup.sh
ensure_rust
ensure_packages openssl:openssl
build_app

if [ -z "${SPIN_VARIABLE_CENTRAL_PG_BASE_URL:-}" ] || [ -z "${SPIN_VARIABLE_BOT_BACKEND_URL:-}" ]; then
  mkdir -p .spin
  if [ -z "${SPIN_VARIABLE_SHARED_SECRET:-}" ]; then
    [ -s .spin/dev-secret ] || (umask 077 && openssl rand -hex 32 > .spin/dev-secret)
    SPIN_VARIABLE_SHARED_SECRET="$(cat .spin/dev-secret)"
  fi
  export SPIN_VARIABLE_SHARED_SECRET
  export SPIN_VARIABLE_CENTRAL_PG_BASE_URL="http://127.0.0.1:3081"
  export SPIN_VARIABLE_BOT_BACKEND_URL="http://127.0.0.1:3082"
  # The mock gateways' throwaway keys (what Keys::from_secret makes; the e2e test
  # local_mode.rs checks these names against the app's).
  [ -s .spin/dev-gateway-secret ] || (umask 077 && openssl rand -hex 32 > .spin/dev-gateway-secret)
  TOPUP_MOCKS_GATEWAY_SECRET="$(cat .spin/dev-gateway-secret)"
  export TOPUP_MOCKS_GATEWAY_SECRET
  g="$TOPUP_MOCKS_GATEWAY_SECRET"
  export SPIN_VARIABLE_GATEWAYS_ENABLED="central,duitku,midtrans,xendit,tripay"
  export SPIN_VARIABLE_PUBLIC_BASE_URL="${SPIN_VARIABLE_PUBLIC_BASE_URL:-http://$listen}"
  export SPIN_VARIABLE_DUITKU_BASE_URL="http://127.0.0.1:3083"
  export SPIN_VARIABLE_DUITKU_MERCHANT_CODE="DMOCK1"
  export SPIN_VARIABLE_DUITKU_API_KEY="$g-api"
  export SPIN_VARIABLE_DUITKU_SIGNATURE="hmac"
  export SPIN_VARIABLE_MIDTRANS_SNAP_URL="http://127.0.0.1:3084"
  export SPIN_VARIABLE_MIDTRANS_API_URL="http://127.0.0.1:3084"
  export SPIN_VARIABLE_MIDTRANS_SERVER_KEY="$g-api"
  export SPIN_VARIABLE_XENDIT_BASE_URL="http://127.0.0.1:3085"
  export SPIN_VARIABLE_XENDIT_SECRET_KEY="$g-api"
  export SPIN_VARIABLE_XENDIT_CALLBACK_TOKEN="$g-token"
  export SPIN_VARIABLE_TRIPAY_BASE_URL="http://127.0.0.1:3086"
  export SPIN_VARIABLE_TRIPAY_API_PATH="/api-sandbox"
  export SPIN_VARIABLE_TRIPAY_MERCHANT_CODE="DMOCK1"
  export SPIN_VARIABLE_TRIPAY_API_KEY="$g-api"
  export SPIN_VARIABLE_TRIPAY_PRIVATE_KEY="$g-private"
  ./target/host/topup-mocks --pg 127.0.0.1:3081 --bot 127.0.0.1:3082 \
    --gateways-from 3083 --app "http://$listen" &
  mocks=$!
  trap 'kill $mocks 2>/dev/null' EXIT
  echo "Local mocks started (PG, bot, and Duitku/Midtrans/Xendit/Tripay on 3083-3086);" \
    "the shared secret is in .spin/dev-secret"
fi

if command -v spin >/dev/null; then
  spin build --from "$manifest"
  spin up --from "$manifest" --listen "$listen" --runtime-config-file runtime-config.toml
else
  ops=()
  [ -n "$sweep_every" ] && ops+=(--sweep-every "$sweep_every")
  [ -n "${METRICS:-}" ] && ops+=(--metrics "$METRICS")
  ./target/host/topup-host serve --manifest "$manifest" \
    --runtime-config-file runtime-config.toml --listen "$listen" "${ops[@]}"
fi
