#!/usr/bin/env bash
# The kill test (test/81.kill.test.ts) at scale: DPPA_KILL_POINTS SIGKILLs (default 40) of
# merges of ~16 MB models, aimed at the statistics pass, the merge pass and the finish, and
# at random delays, half of them during --overwrite runs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/test/81.kill.test.js ] || npx tsc -p .
export DPPA_KILL_POINTS="${DPPA_KILL_POINTS:-40}" DPPA_KILL_SCALE="${DPPA_KILL_SCALE:-large}"
exec npx mocha --no-config --require dist/test/hooks.js --reporter spec --timeout 1800000 dist/test/81.kill.test.js
