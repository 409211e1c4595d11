#!/usr/bin/env bash
# Fuzzes the app from openapi.json with schemathesis (pinned below; installed into
# target/schemathesis/venv when absent): the real components on the test host, SQLite store
# files in a temporary directory, the mock Central PG and bot, the bearer token (and the
# console's operator token, `admin_token`, for the /admin/... routes), every operation, and
# signed callbacks (tests/fuzz/hooks.py). Every check is on, with schemathesis' default
# expectations (positive data accepted, negative data refused, 405 with Allow for a method the
# document does not list). Fails on a 5xx other than the documented
# 502/503, a response the document does not describe, or a refused request that changed the
# store. All five gateways are enabled with throwaway credentials the hooks sign
# with; Duitku's, Midtrans's, Xendit's and Tripay's APIs point at a closed port, so a create
# there answers the documented 502 and their callbacks reach no deposit of theirs (they are
# refused, or acknowledged when they record nothing). Builds the app first (a no-op when up to
# date).
# FUZZ_MAX_EXAMPLES sets the cases per operation (default 100), FUZZ_SEED the seed (16).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
schemathesis_version=4.32.5
venv=target/schemathesis/venv

source scripts/setup.sh
ensure_packages openssl:openssl

ensure_python_venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$schemathesis_version"; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$schemathesis_version"
fi

build_app

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port=$(port)
bot_port=$(port)
app_port=$(port)
closed_port=$(port)  # nothing listens here: the four gateways' APIs

secret=$(openssl rand -hex 32)
export SPIN_VARIABLE_SHARED_SECRET="$secret"
# The console's one operator token: 48 hex digits, so no bot key or shared secret here (64
# and 32 digits) can equal it, which the app refuses.
admin_token=$(openssl rand -hex 24)
export SPIN_VARIABLE_ADMIN_TOKEN="$admin_token"
export SPIN_VARIABLE_CENTRAL_PG_BASE_URL="http://127.0.0.1:$pg_port"
export SPIN_VARIABLE_BOT_BACKEND_URL="http://127.0.0.1:$bot_port"
export SPIN_VARIABLE_PUBLIC_BASE_URL="http://127.0.0.1:$app_port"
export SPIN_VARIABLE_GATEWAYS_ENABLED=central,duitku,midtrans,xendit,tripay
for variable in DUITKU_BASE_URL MIDTRANS_SNAP_URL MIDTRANS_API_URL XENDIT_BASE_URL TRIPAY_BASE_URL; do
  export "SPIN_VARIABLE_$variable=http://127.0.0.1:$closed_port"
done
export SPIN_VARIABLE_DUITKU_MERCHANT_CODE=DFUZZ SPIN_VARIABLE_TRIPAY_MERCHANT_CODE=TFUZZ
for variable in DUITKU_API_KEY MIDTRANS_SERVER_KEY XENDIT_SECRET_KEY XENDIT_CALLBACK_TOKEN \
  TRIPAY_API_KEY TRIPAY_PRIVATE_KEY; do
  export "SPIN_VARIABLE_$variable=$(openssl rand -hex 16)"
done
cat >"$work/runtime-config.toml" <<TOML
[key_value_store.default]
type = "spin"
path = "default.db"

[key_value_store.claims]
type = "spin"
path = "claims.db"
TOML

./target/host/topup-mocks --pg "127.0.0.1:$pg_port" --bot "127.0.0.1:$bot_port" \
  >"$work/mocks.log" 2>&1 &
pids+=($!)
./target/host/topup-host serve --manifest "$root/spin.toml" \
  --runtime-config-file "$work/runtime-config.toml" --listen "127.0.0.1:$app_port" \
  >"$work/app.log" 2>&1 &
pids+=($!)

"$python" - "$app_port" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=1)
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("fuzz: the app did not answer /health")
PY

export FUZZ_BEARER="$secret" FUZZ_SECRET="$secret" FUZZ_ADMIN_TOKEN="$admin_token"
export FUZZ_DUITKU_MERCHANT_CODE="$SPIN_VARIABLE_DUITKU_MERCHANT_CODE"
export FUZZ_DUITKU_API_KEY="$SPIN_VARIABLE_DUITKU_API_KEY"
export FUZZ_MIDTRANS_SERVER_KEY="$SPIN_VARIABLE_MIDTRANS_SERVER_KEY"
export FUZZ_XENDIT_TOKEN="$SPIN_VARIABLE_XENDIT_CALLBACK_TOKEN"
export FUZZ_TRIPAY_PRIVATE_KEY="$SPIN_VARIABLE_TRIPAY_PRIVATE_KEY"
export FUZZ_STORES="$work/default.db:$work/claims.db"
export FUZZ_SUMMARY="$root/target/schemathesis/summary.txt"
export SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$root/tests/fuzz"
started=$(date +%s)
status=0
# Run from target/ so schemathesis' own cache stays out of the work tree.
(cd target/schemathesis && "$root/$venv/bin/schemathesis" \
  --config-file "$root/tests/fuzz/schemathesis.toml" run "$root/openapi.json" \
  --url "http://127.0.0.1:$app_port" \
  --max-examples "${FUZZ_MAX_EXAMPLES:-100}" ${FUZZ_SEED:+--seed "$FUZZ_SEED"} \
  --checks all \
  --report junit --report-dir report) || status=$?
echo "fuzz: schemathesis took $(( $(date +%s) - started )) s (exit $status)"
if [ "$status" -ne 0 ]; then
  echo "--- app log (last 40 lines)"; tail -40 "$work/app.log"
fi
exit "$status"
