#!/usr/bin/env bash
# The linker of the wasm32-wasip2 components (.cargo/config.toml): rustc's own
# wasm-component-ld links the core module, Binaryen's `wasm-opt -Oz` shrinks it (about 7 %
# of every component, with the same behaviour), `wasm-tools component new` makes it the
# component, as wasm-component-ld would have, and `wasm-tools strip --all` drops the
# component's debug names. Without wasm-opt or wasm-tools (scripts/setup.sh
# installs both), or for a link it does not recognise, it is wasm-component-ld alone: the
# same component, only larger.
set -euo pipefail

# rustc puts its own tools (wasm-component-ld, rust-lld) first on the linker's PATH.
real=$(command -v wasm-component-ld) || {
  echo "wasm-link.sh: wasm-component-ld not found on PATH" >&2
  exit 1
}

output=""
previous=""
for arg in "$@"; do
  case "$arg" in
    # Options that change how the component is made: leave the whole link to it.
    @* | --skip-wit-component | --wasi-adapter* | --adapt* | --component-type* | \
      --string-encoding* | --realloc-via-memory-grow | --merge-imports-based-on-semver*)
      exec "$real" "$@"
      ;;
  esac
  [ "$previous" = "-o" ] && output=$arg
  previous=$arg
done
if [ -z "$output" ] || ! command -v wasm-opt >/dev/null || ! command -v wasm-tools >/dev/null; then
  exec "$real" "$@"
fi

core="$output.core.wasm"
trap 'rm -f "$core" "$core.opt"' EXIT
"$real" "$@" --skip-wit-component
mv "$output" "$core"
# The features rustc's wasm32 targets emit by default; a module needing more fails
# validation here, and is then linked as it was.
features=(--enable-sign-ext --enable-mutable-globals --enable-reference-types
  --enable-multivalue --enable-bulk-memory --enable-nontrapping-float-to-int)
if wasm-opt -Oz "${features[@]}" "$core" -o "$core.opt" 2>/dev/null; then
  mv "$core.opt" "$core"
else
  echo "wasm-link.sh: wasm-opt could not optimise $output; linked without it" >&2
fi
if ! wasm-tools component new "$core" -o "$output"; then
  echo "wasm-link.sh: wasm-tools could not make the component of $output; linked without it" >&2
  rm -f "$core" "$core.opt"
  exec "$real" "$@"
fi
# The component's own debug names (`component-name`, the adapters' `name`: about 13 KB) go
# the way `strip = true` sends the core module's; no runtime reads them.
if wasm-tools strip --all "$output" -o "$output.stripped"; then
  mv "$output.stripped" "$output"
else
  rm -f "$output.stripped"
  echo "wasm-link.sh: wasm-tools could not strip $output; kept its names" >&2
fi
