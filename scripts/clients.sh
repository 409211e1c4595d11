#!/usr/bin/env bash
# Generates clients from openapi.json with the generators people use, and uses them:
# - Python: openapi-python-client (pinned in tests/clients/python/requirements.txt, installed
#   into target/clients/python/venv) writes the package `topup_client`, failing on any
#   warning (an operation or model it would leave out); tests/clients/python/test_client.py
#   then walks a deposit through it against the real components on topup-host with the mock
#   Central PG and bot: create, status, a signed PAID callback, status credited.
# - TypeScript: openapi-typescript writes the types and tsc (both pinned in
#   tests/clients/typescript/package-lock.json, installed into target/clients/typescript)
#   compiles tests/clients/typescript/check.ts, which uses them, in strict mode.
# Installs are redone only when their pins change. Builds the app first (a no-op when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/target/clients"
mkdir -p "$out"

source scripts/setup.sh

# What a cached install was made from.
fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

echo "== clients: Python (openapi-python-client)"
ensure_python_venv
venv="$out/python/venv"
want=$(fingerprint tests/clients/python/requirements.txt)
if [ "$(cat "$out/python/installed" 2>/dev/null)" != "$want" ]; then
  rm -rf "$out/python"
  mkdir -p "$out/python"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q -r tests/clients/python/requirements.txt
  echo "$want" >"$out/python/installed"
fi
rm -rf "$out/python/topup_client"
# The generator formats its output with the ruff it brings along (found on PATH).
PATH="$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate --path openapi.json \
  --config tests/clients/python/config.yml --meta none \
  --output-path "$out/python/topup_client" --fail-on-warning
echo "generated: $(find "$out/python/topup_client/api" -name '*.py' ! -name '__init__.py' | wc -l) operations," \
  "$(find "$out/python/topup_client/models" -name '*.py' ! -name '__init__.py' | wc -l) model files"

build_app
"$venv/bin/python" tests/clients/python/test_client.py --client-dir "$out/python" \
  --host "$root/target/host/topup-host" --mocks "$root/target/host/topup-mocks" \
  --manifest "$root/spin.toml"

echo "== clients: TypeScript (openapi-typescript, tsc)"
ensure_packages node:nodejs npm:npm
ts="$out/typescript"
want=$(fingerprint tests/clients/typescript/package.json tests/clients/typescript/package-lock.json)
if [ "$(cat "$ts/installed" 2>/dev/null)" != "$want" ]; then
  rm -rf "$ts"
  mkdir -p "$ts"
  cp tests/clients/typescript/package.json tests/clients/typescript/package-lock.json "$ts/"
  npm ci --prefix "$ts" --no-audit --no-fund --loglevel=error
  echo "$want" >"$ts/installed"
fi
cp tests/clients/typescript/check.ts tests/clients/typescript/tsconfig.json "$ts/"
"$ts/node_modules/.bin/openapi-typescript" openapi.json --output "$ts/api.d.ts"
"$ts/node_modules/.bin/tsc" --project "$ts/tsconfig.json"
echo "tsc: the generated types compile with check.ts"
