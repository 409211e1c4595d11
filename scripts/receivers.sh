#!/usr/bin/env bash
# Prepares the example receivers (examples/) for the end-to-end suite: each one's pinned
# dependencies from its registry (npm, PyPI, crates.io), cached under target/receivers/<name>/
# and reinstalled only when its lockfile changes. Writes target/receivers/<name>/run (the
# command that starts it, one argument a line) or, only when its toolchain is absent,
# target/receivers/<name>/skipped (why), which the suite prints instead of testing it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/target/receivers"
mkdir -p "$out"

# What a cached install was made from.
fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

# prepare NAME TOOL...: 0 when every TOOL is on PATH; otherwise records and prints the skip.
prepare() {
  local name=$1 tool
  shift
  mkdir -p "$out/$name"
  rm -f "$out/$name/run" "$out/$name/skipped"
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "$tool is not installed" >"$out/$name/skipped"
      echo "SKIPPED receiver $name: $tool is not installed (its end-to-end test is skipped)"
      return 1
    fi
  done
}

# run NAME ARG...: how the suite starts it.
run() {
  local name=$1
  shift
  printf '%s\n' "$@" >"$out/$name/run"
  echo "receiver $name ready"
}

# The Node examples share credits.js: the copies must not drift apart.
for name in node-discordjs node-baileys; do
  cmp -s examples/node-express-telegraf/credits.js "examples/$name/credits.js" ||
    { echo "examples/$name/credits.js differs from examples/node-express-telegraf/credits.js" >&2; exit 1; }
done

for name in node-express-telegraf node-discordjs node-baileys; do
  prepare "$name" node npm || continue
  dir="$out/$name"
  want=$(fingerprint "examples/$name/package.json" "examples/$name/package-lock.json")
  if [ "$(cat "$dir/installed" 2>/dev/null)" != "$want" ]; then
    cp "examples/$name/package.json" "examples/$name/package-lock.json" "$dir/"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    echo "$want" >"$dir/installed"
  fi
  # The sources run next to their node_modules (ES modules resolve packages from their folder).
  cp "examples/$name"/*.js "$dir/"
  run "$name" node "$dir/receiver.js"
done

name=python-fastapi-aiogram
if prepare "$name" python3; then
  dir="$out/$name"
  want=$(fingerprint "examples/$name/requirements.txt")
  if [ "$(cat "$dir/installed" 2>/dev/null)" != "$want" ]; then
    rm -rf "$dir/venv"
    python3 -m venv "$dir/venv"
    "$dir/venv/bin/pip" install --quiet -r "examples/$name/requirements.txt"
    echo "$want" >"$dir/installed"
  fi
  run "$name" "$dir/venv/bin/python" "$root/examples/$name/receiver.py"
fi

name=rust-axum
if prepare "$name" cargo; then
  cargo build --quiet --locked --manifest-path "examples/$name/Cargo.toml" \
    --target-dir "$out/$name/target"
  run "$name" "$out/$name/target/debug/topup-receiver-axum"
fi
