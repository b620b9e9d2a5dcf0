#!/usr/bin/env bash
# Bounded memory at scale (test/85.memory.test.ts, DPPA_MEMORY_SCALE=large): ~640 MB of
# inputs merged with dppa under --max-memory 450M (and serially under 300M); the child's
# peak RSS (VmHWM) must stay under the budget.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/test/85.memory.test.js ] || npx tsc -p .
export DPPA_MEMORY_SCALE=large
exec npx mocha --no-config --require dist/test/hooks.js --reporter spec --timeout 1800000 dist/test/85.memory.test.js
