# Shared by scripts/run.sh and scripts/test.sh: installs what is missing and says so.
# Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# One build folder outside the checkout, so fresh clones (CI) reuse earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/loopstack-secrets/target}"
# cargo-leptos adds this flag to debug builds itself; plain `cargo test` must pass the same so
# the two share compiled dependencies (exporting it globally would make cargo-leptos add it
# twice and rebuild everything).
LEPTOS_DEBUG_RUSTFLAGS="--cfg erase_components"
export PATH="$HOME/.cargo/bin:$PATH"

CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.130

step() { printf '\n==> %s\n' "$*"; }

ensure_rust_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "Installing the wasm32-unknown-unknown Rust target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    step "Installing cargo-leptos $CARGO_LEPTOS_VERSION (builds with Rust 1.95; takes about 20 minutes, once)"
    cargo install cargo-leptos --locked --version "$CARGO_LEPTOS_VERSION"
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
    step "Installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (must match the crate's wasm-bindgen)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

ensure_e2e_tools() {
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
      step "Installing Debian's Chromium for the end-to-end tests"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
      echo "Chromium is missing: run 'sudo apt-get install chromium' and try again" >&2
      exit 1
    fi
  fi
  if [ ! -d end2end/node_modules/@playwright/test ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    step "Installing the end-to-end test packages (npm ci)"
    (cd end2end && npm ci --no-audit --no-fund)
  fi
}

# The export test sources the dotenv output in sh, bash, dash and zsh.
ensure_test_shells() {
  if ! command -v zsh >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      step "Installing zsh (the export test sources its output in every common shell)"
      apt-get install -y -qq zsh >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq zsh; }
    else
      echo "zsh is missing: the export test runs with sh, bash and dash only ('sudo apt-get install zsh' adds it)" >&2
    fi
  fi
}

SCHEMATHESIS_VERSION=4.32.5

ensure_fuzz_tools() {
  if ! st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    step "Installing schemathesis $SCHEMATHESIS_VERSION (API fuzzing, from PyPI)"
    python3 -m pip install --quiet --user "schemathesis==$SCHEMATHESIS_VERSION" 2>/dev/null \
      || python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  export PATH="$HOME/.local/bin:$PATH"
}

build_app() {
  step "Building the server and the WASM front end (cargo leptos build)"
  cargo leptos build
}

# The release server and its front end, precompressed: cargo-leptos writes brotli and gzip copies
# of the WASM, JS and CSS; its gzip (libflate) is about 18 % larger than gzip -9, which browsers
# without brotli (plain HTTP) then download, so the gzip copies are written again with gzip -9.
build_release() {
  if ! command -v wasm-opt >/dev/null; then
    step "Installing binaryen 132 for wasm-opt (Debian's breaks hydration)"
    npm install -g binaryen@132
  fi
  step "Building the release server and front end (cargo leptos build --release --precompress, gzip -9)"
  cargo leptos build --release --precompress
  for f in target/site/pkg/*.wasm target/site/pkg/*.js target/site/pkg/*.css; do
    [ -f "$f" ] && gzip -9 -n -k -f "$f"
  done
}

# The server binary built by cargo-leptos.
server_bin() {
  echo "$CARGO_TARGET_DIR/debug/loopstack-secrets"
}
