#!/usr/bin/env bash
# Runs loopstack-secrets on SQLite under ./data, installing what is missing first.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_rust_tools
build_app
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-target/site}"
step "Starting the server (Ctrl-C stops it)"
exec "$(server_bin)" serve "$@"
