#!/usr/bin/env bash
# Builds the release server and its precompressed front end, installing what is missing first.
# Run it from the checkout; then start the server with the site beside it:
#   LEPTOS_SITE_ROOT=target/site "$CARGO_TARGET_DIR/release/loopstack-secrets" serve
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_rust_tools
build_release
step "Built: $CARGO_TARGET_DIR/release/loopstack-secrets (with hash.txt) and target/site"
echo "Start it with: LEPTOS_SITE_ROOT=target/site $CARGO_TARGET_DIR/release/loopstack-secrets serve"
