#!/usr/bin/env bash
# Every check a GPU machine can make, in one go (about 4 minutes on an H100 with 16 cores, most
# of it generating the ~1B family):
#   1. test 60: GPU against CPU through the addon (NaN/Inf bits included), and the host check;
#   2. the kernel and merge tests with every job on the GPU (cuda-default.js);
#   3. bench/gpu/run.sh: every kernel against the plain reference and the CPU kernels, GB/s;
#   4. CLI merges on the GPU against the CPU, byte for byte and timed (e2e.ts): the quick family
#      with staged and with pinned buffers, then the ~1B family.
# Needs the addon built with nvcc (npm install) and the TypeScript compiled (npm run build:ts).
# Results: bench/results/gpu-check-*.json and the logs under $LOGS (default bench/results).
# Env: DPPA_PREBUILT=1 and BUILD_DIR for run.sh's programs built elsewhere; SKIP_FULL=1.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOGS=${LOGS:-bench/results}
MOCHA="node node_modules/mocha/bin/mocha.js --no-config --require dist/test/hooks.js --timeout 120000 --reporter test/reporter.js"
rc=0
stage() { echo; echo "=== $1 (t=${SECONDS}s) ==="; }
stage "test 60"
$MOCHA dist/test/60.cuda.test.js 2>&1 | tee "$LOGS/gpu-check-test60.log" | tail -3 || rc=1
stage "kernel and merge tests, every job on the GPU"
$MOCHA --require bench/gpu/cuda-default.js dist/test/1[0-6]*.test.js dist/test/4[0-2]*.test.js dist/test/46*.test.js 2>&1 |
  tee "$LOGS/gpu-check-suite.log" | grep -v "^  *✔" | tail -30 || rc=1
stage "bench/gpu/run.sh"
E2E_ELEMENTS=${E2E_ELEMENTS:-16777216} bash bench/gpu/run.sh 2>&1 | tee "$LOGS/gpu-check-run.log" | grep -v "18/18\|15/15" || rc=1
stage "CLI merges, quick family: staged, then pinned"
DPPA_CUDA_PIN=0 node dist/bench/gpu/e2e.js --out bench/results/gpu-check-quick-staged.json || rc=1
node dist/bench/gpu/e2e.js --out bench/results/gpu-check-quick-pinned.json || rc=1
if [ -z "${SKIP_FULL:-}" ]; then
  stage "CLI merges, ~1B family"
  node dist/bench/gpu/e2e.js --full --out bench/results/gpu-check-full.json || rc=1
fi
stage "check.sh: $([ $rc -eq 0 ] && echo PASSED || echo FAILED)"
exit $rc
