#!/usr/bin/env bash
# A longer fuzz run of the safetensors reader and shard index (test/fuzz/run.ts; the suite's
# test 23 runs the same fuzzer for 5 s). Every mutated file must open and read back exactly,
# or be refused with E_FORMAT/E_IO; anything else fails.
#   npm run fuzz                       120 s, a new seed each run (printed, to reproduce)
#   DPPA_FUZZ_SECONDS=600 DPPA_FUZZ_SEED=123 npm run fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/test/fuzz/run.js ] || npx tsc -p .
args=(--seconds "${DPPA_FUZZ_SECONDS:-120}")
[ -n "${DPPA_FUZZ_SEED:-}" ] && args+=(--seed "$DPPA_FUZZ_SEED")
exec node dist/test/fuzz/run.js "${args[@]}"
