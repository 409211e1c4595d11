#!/usr/bin/env bash
# Writes spin.cloud.toml for Fermyon Cloud, which does not resolve `{{ variable }}` templates
# in allowed_outbound_hosts: the two templated hosts become the literal origins given here.
# Everything else is spin.toml unchanged (component variables stay templated; Cloud resolves
# those). Usage: scripts/cloud-manifest.sh https://pg.example.com https://bot.example.com
set -euo pipefail
cd "$(dirname "$0")/.."
origin='^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$'
if [ $# -ne 2 ] || ! [[ $1 =~ $origin ]] || ! [[ $2 =~ $origin ]]; then
  echo "usage: $0 <central-pg-origin> <bot-origin>   (scheme://host[:port], no path)" >&2
  exit 2
fi
out="${OUT:-spin.cloud.toml}"
sed -e "/^allowed_outbound_hosts/s|{{ central_pg_base_url }}|$1|" \
    -e "/^allowed_outbound_hosts/s|{{ bot_backend_url }}|$2|" spin.toml > "$out"
if grep '^allowed_outbound_hosts' "$out" | grep -q '{{'; then
  echo "a templated outbound host is left in $out" >&2
  exit 1
fi
echo "wrote $out"
