# Sourced by run.sh, test.sh and bench.sh: installs what is missing and builds the app once.
# shellcheck shell=bash

# The wasm32-wasip2 target and the lint tools (rust-toolchain.toml names them too; rustup
# does not always install them on its own).
ensure_rust() {
  rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
  rustup component list --installed | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
}

# Debian packages for the commands given as "command:package" pairs, when a command is missing.
ensure_packages() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  install_packages "${missing[@]}"
}

# Installs Debian packages.
install_packages() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

# Sets $python to a Python 3.10+ that can make a venv, installing python3-venv when none can
# (Debian splits venv out of python3).
ensure_python_venv() {
  python=$(find_python) || { install_packages python3 python3-venv; python=$(find_python); } || {
    echo "needs Python 3.10 or newer with venv" >&2
    return 1
  }
}

find_python() {
  local candidate
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null \
      && "$candidate" -c 'import ensurepip, sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# Binaryen's wasm-opt (Debian's binaryen) and wasm-tools (crates.io, pinned), with which
# scripts/wasm-link.sh shrinks every component; without them the components link larger.
# Installed before the first build: cargo does not link again when they appear later.
ensure_wasm_shrinkers() {
  ensure_packages wasm-opt:binaryen
  command -v wasm-tools >/dev/null || cargo install --quiet --locked wasm-tools --version 1.263.0
}

# The components and every native binary (host, mocks, bench). Always the whole workspace:
# `-p topup-host` alone resolves other dependency features and would rebuild wasmtime, so
# run.sh, test.sh and bench.sh share this one build.
build_app() {
  ensure_wasm_shrinkers
  cargo build --target wasm32-wasip2 --release
  build_p3
  cargo build --profile host --workspace --bins
}

# The WASIp3 build for Spin 4.1+ (spin.p3.toml): the same components with topup-spin's `p3`
# feature, in target/wasm32-wasip2/release-p3.
build_p3() {
  cargo build --target wasm32-wasip2 --profile release-p3 --features topup-spin/p3
}
