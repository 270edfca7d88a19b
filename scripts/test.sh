#!/usr/bin/env bash
# Builds everything and runs every test: the Rust suites (SQLite and PostgreSQL) and the
# Playwright specs in Chromium against a freshly started server.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PG_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

ensure_rust_tools
ensure_e2e_tools
ensure_test_shells
ensure_fuzz_tools

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null; then
    step "Starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export REQUIRE_POSTGRES=1
  step "Dropping databases left by earlier test runs"
  psql "$PG_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'lss_test_%'" \
    | while read -r db; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null || true; done
else
  echo "PostgreSQL does not answer at 127.0.0.1:5432: the Rust suite runs on SQLite only" >&2
fi

step "Formatting and lints (cargo fmt --check; clippy -D warnings on the server and the WASM front end)"
# A failed gate fails the test command at the end; the suites still run so one run shows all.
gates=0
cargo fmt --check || { echo "cargo fmt --check failed: run cargo fmt" >&2; gates=1; }
LEPTOS_OUTPUT_NAME=loopstack-secrets RUSTFLAGS="$LEPTOS_DEBUG_RUSTFLAGS" cargo clippy --all-targets --features ssr -- -D warnings \
  || gates=1
cargo clippy --lib --features hydrate --target wasm32-unknown-unknown -- -D warnings || gates=1

build_app
# `cargo test` rebuilds the binary with test features; the end-to-end tests must run the one
# cargo-leptos built (it matches the WASM it hydrates), so keep a copy.
E2E_DIR="$(mktemp -d)"
cp "$(server_bin)" "$E2E_DIR/loopstack-secrets"
# The hashed front-end file names the binary serves are listed beside it.
cp "$(dirname "$(server_bin)")/hash.txt" "$E2E_DIR/"

step "Rust tests (unit and integration, SQLite and PostgreSQL)"
# LEPTOS_OUTPUT_NAME as cargo-leptos sets it: leptos reads it at compile time (it names the
# WASM file in the page), so the test build matches and reuses cargo-leptos's artifacts.
LEPTOS_OUTPUT_NAME=loopstack-secrets RUSTFLAGS="$LEPTOS_DEBUG_RUSTFLAGS" cargo test --features ssr --no-fail-fast 2>&1 \
  | tee "$E2E_DIR/cargo-test.log"
rust_passed=$(awk '/^test result:/ {s+=$4} END {print s+0}' "$E2E_DIR/cargo-test.log")

# `cargo test` built the example agent too; the MCP spec runs it against a fake model.
cp "$CARGO_TARGET_DIR/debug/examples/mcp_agent" "$E2E_DIR/mcp_agent"
export AGENT_BIN="$E2E_DIR/mcp_agent"

step "End-to-end tests (Playwright, Chromium)"
PORT="${E2E_PORT:-3999}"
export LOOPSTACK_SECRETS_DATA_DIR="$E2E_DIR/data"
export LOOPSTACK_SECRETS_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export LEPTOS_SITE_ADDR="127.0.0.1:$PORT"
export LEPTOS_SITE_ROOT="target/site"
unset DATABASE_URL
export LOOPSTACK_BIN="$E2E_DIR/loopstack-secrets"
export E2E_BASE_URL="http://127.0.0.1:$PORT"
# One key the operator provides to every workspace (global-keys.spec.ts checks the Studio shows
# it and never its value).
export E2E_GLOBAL_VALUE="e2e-global-$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
# Webhooks may reach the specs' receivers on loopback (webhooks.spec.ts), retried quickly.
LOOPSTACK_SECRETS_GLOBAL_KEYS=E2E_GLOBAL_KEY E2E_GLOBAL_KEY="$E2E_GLOBAL_VALUE" \
  LOOPSTACK_SECRETS_WEBHOOK_ALLOW_HOSTS=127.0.0.1 LOOPSTACK_SECRETS_WEBHOOK_RETRY_BASE_MS=200 \
  "$LOOPSTACK_BIN" serve >"$E2E_DIR/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$E2E_BASE_URL/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$E2E_BASE_URL/healthz" >/dev/null || { cat "$E2E_DIR/server.log"; exit 1; }
status=0
(cd end2end && npx playwright test) 2>&1 | tee "$E2E_DIR/playwright.log" || status=$?

step "API fuzzing (schemathesis against the served OpenAPI document)"
# A workspace of its own and a token with every scope, so generated requests reach the handlers.
FUZZ_WS=$("$LOOPSTACK_BIN" workspace create fuzzing | tail -n1)
FUZZ_TOKEN=$("$LOOPSTACK_BIN" token create --workspace "$FUZZ_WS" --name fuzzing --scope secrets:list \
  --scope secrets:write --scope secrets:read --scope tools:call --scope workflows:run --scope webhooks:manage | tail -n1)
# The long-poll and the event stream hold their answer open by design; Rust tests cover them.
fuzz_status=0
LSS_FUZZ_WORKSPACE="$FUZZ_WS" st --config-file end2end/schemathesis.toml run "$E2E_BASE_URL/api/v1/openapi.json" \
  --header "Authorization: Bearer $FUZZ_TOKEN" --max-examples "${FUZZ_EXAMPLES:-25}" --seed 1 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --exclude-path-regex '/(wait|events)$' --phases examples,coverage,fuzzing --request-timeout 10 --no-color \
  2>&1 | tee "$E2E_DIR/schemathesis.log" || fuzz_status=$?
[ "$fuzz_status" = 0 ] || status=$fuzz_status

if [ "$status" != 0 ]; then
  echo "--- server log ---"; tail -n 100 "$E2E_DIR/server.log"
fi
[ "$gates" = 0 ] || status=1
# awk alone: a grep finding nothing would end the script under `set -e -o pipefail`.
e2e_passed=$(awk '/^ +[0-9]+ passed/ {s+=$1} END {print s+0}' "$E2E_DIR/playwright.log")
e2e_failed=$(awk '/^ +[0-9]+ failed/ {s+=$1} END {print s+0}' "$E2E_DIR/playwright.log")
echo
fuzz_failed=$([ "$fuzz_status" = 0 ] && echo 0 || echo 1)
echo "Rust: $rust_passed passed; Playwright: $e2e_passed passed, $e2e_failed failed; schemathesis: $([ "$fuzz_failed" = 0 ] && echo passed || echo failed); fmt and clippy: $([ "$gates" = 0 ] && echo passed || echo failed)"
echo "$((rust_passed + e2e_passed + 2 - fuzz_failed - gates)) passed, $((e2e_failed + fuzz_failed + gates)) failed"
exit "$status"
