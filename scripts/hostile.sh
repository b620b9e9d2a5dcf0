#!/usr/bin/env bash
# The long hostile-input / fault / scale checks (issue 6), as CI runs them before `npm test`:
# sanitizers, a longer fuzz run, the kill test at scale, bounded memory at scale. Each prints
# its own summary; none prints the "N passed, N failed, N skipped" line CI reads.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo; echo "=== $1 ($(date -u +%H:%M:%S))"; }
step "sanitizers (ASan+UBSan) on the kernel tests"; bash scripts/sanitize.sh
step "fuzz ${DPPA_FUZZ_SECONDS:=120} s"; DPPA_FUZZ_SECONDS=$DPPA_FUZZ_SECONDS bash scripts/fuzz.sh
step "kill test"; bash scripts/kill.sh
step "bounded memory at scale"; bash scripts/memory.sh
step "hostile checks done"
