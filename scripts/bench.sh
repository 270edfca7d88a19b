#!/usr/bin/env bash
# Builds the release server (precompressed front end) and runs the load benchmarks against it,
# each beside its baseline: `./scripts/bench.sh > bench.md`. Needs wrk (installed when root).
# BENCH_SECONDS (default 5), BENCH_ENGINES (default sqlite,postgres) and BENCH_ONLY (any of
# polls,reads,writes,ssr,flood) tune the run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_rust_tools
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    step "Installing wrk (the load generator)" >&2
    apt-get install -y -qq wrk >&2
  else
    echo "wrk is missing: run 'sudo apt-get install wrk' and try again" >&2
    exit 1
  fi
fi
build_release >&2

step "Front-end sizes" >&2
echo "## Front end (release, target/site/pkg)"
echo
echo "| file | raw KiB | gzip KiB | brotli KiB |"
echo "|---|---:|---:|---:|"
for f in target/site/pkg/*.wasm target/site/pkg/*.js target/site/pkg/*.css; do
  [ -f "$f" ] || continue
  kib() { [ -f "$1" ] && awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1024 }' || echo "-"; }
  echo "| $(basename "$f" | sed -E 's/\.[A-Za-z0-9_-]{10,}\././') | $(kib "$f") | $(kib "$f.gz") | $(kib "$f.br") |"
done
# What a first visit downloads for the islands (target: 250 KB gzip).
code_gz=$(cat target/site/pkg/*.wasm.gz target/site/pkg/*.js.gz | wc -c)
echo "| WASM + JS, gzip as served | | $(awk -v b="$code_gz" 'BEGIN { printf "%.1f KiB (%.0f KB)", b / 1024, b / 1000 }') | |"
echo

# Many long-polls at once need more than the default 1,024 file descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# The PostgreSQL databases the run creates (lss_bench_*) are dropped when it ends.
drop_bench_databases() {
  psql "${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -Atc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'lss_bench_%'" 2>/dev/null \
    | while read -r db; do psql "${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null; done
}
trap drop_bench_databases EXIT
step "Load benchmarks (cargo bench --bench load)" >&2
LOOPSTACK_BIN="$CARGO_TARGET_DIR/release/loopstack-secrets" LEPTOS_SITE_ROOT=target/site LEPTOS_OUTPUT_NAME=loopstack-secrets \
  cargo bench --features ssr --bench load
