#!/usr/bin/env bash
# Installs what the console's browser test (tests/browser/console.mjs) needs: Debian's
# chromium and the pinned playwright-core. Safe to run again: it only does what is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
browser_dir="$root/tests/browser"

# Debian's chromium, not a Playwright browser download: only package registries are reachable.
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # A fresh machine may have no package lists yet, and then apt finds no chromium.
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium
fi

# npm ci installs exactly the lock file; redo it when the lock file is newer than the install.
if [ ! -d "$browser_dir/node_modules" ] || [ "$browser_dir/package-lock.json" -nt "$browser_dir/node_modules" ]; then
  (cd "$browser_dir" && npm ci --no-audit --no-fund)
  # npm ci may leave node_modules' own time older than the lock file: mark it as fresh.
  touch "$browser_dir/node_modules"
fi
