#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into build-sanitize/
# (the normal build/ is untouched; CMakeLists.txt is not edited: the flags go in through
# CMAKE_CXX_FLAGS) and runs the kernel tests (dist/test/1*.test.js) against it.
#
#   npm run test:sanitize            (needs the TypeScript compiled: npx tsc -p .)
#
# node itself is not instrumented, so the ASan runtime is preloaded; leak detection is off
# (node's own allocations at exit are not ours). Any ASan report or UBSan finding aborts the
# run (halt_on_error=1) and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build-sanitize
FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g"

if [ ! -f dist/test/10.convert.test.js ]; then
  echo "sanitize: compiling the TypeScript first"
  npx tsc -p .
fi

# The objects really are instrumented (not just linked against the runtime).
check_instrumented() {
  if ! nm -D --undefined-only "$1" | grep __asan_report >/dev/null; then
    echo "sanitize: $1 has no ASan instrumentation"; exit 1
  fi
}
echo "sanitize: building the addon with $FLAGS into $OUT/"
# cmake-js sets CMAKE_CXX_FLAGS itself (after ours) and builds Release: the flags go into
# CMAKE_CXX_FLAGS_RELEASE, which it leaves alone.
# `configure` every time: `compile` skips configuring when the folder exists, and would keep
# stale flags.
{ npx cmake-js configure --out "$OUT" \
    "--CDCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG $FLAGS" "--CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" &&
  npx cmake-js build --out "$OUT"; } >"$OUT.log" 2>&1 || {
  tail -n 60 "$OUT.log"; echo "sanitize: build failed (full log: $OUT.log)"; exit 1; }

ADDON="$PWD/$OUT/Release/dppa.node"
[ -f "$ADDON" ] || ADDON="$(find "$PWD/$OUT" -name dppa.node | head -n 1)"
[ -f "$ADDON" ] || { echo "sanitize: no dppa.node under $OUT/"; exit 1; }

# The addon really is instrumented: it needs the ASan runtime.
if ! ldd "$ADDON" | grep libasan >/dev/null; then
  echo "sanitize: $ADDON is not linked against libasan"; exit 1
fi
check_instrumented "$ADDON"
LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBUBSAN="$(gcc -print-file-name=libubsan.so)"
for lib in "$LIBASAN" "$LIBUBSAN"; do
  [ -f "$lib" ] || { echo "sanitize: runtime $lib not found"; exit 1; }
done

export DPPA_ADDON_PATH="$ADDON"
export LD_PRELOAD="$LIBASAN $LIBUBSAN"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:print_summary=1:allow_user_segv_handler=1:handle_segv=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"

# Check that the instrumented addon is the one loaded, then run the kernel tests against it.
node -e "
  const { candidatePaths, native } = require('./dist/lib/native');
  native();
  const loaded = Object.keys(require.cache).find((p) => p.endsWith('.node'));
  if (loaded !== process.env.DPPA_ADDON_PATH) { console.error('sanitize: loaded ' + loaded + ', expected ' + process.env.DPPA_ADDON_PATH); process.exit(1); }
  console.log('sanitize: loaded ' + loaded);
"
files=(dist/test/1*.test.js)
echo "sanitize: running ${files[*]} with ASan+UBSan"
LOG="$OUT/mocha.log"
set +e
# --no-config: .mocharc.json's spec would add every other test file.
npx mocha --no-config --require dist/test/hooks.js --timeout 600000 --reporter dot "${files[@]}" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
if grep -qE "ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$LOG"; then
  echo "sanitize: sanitizer findings (see $LOG)"; exit 1
fi
[ "$status" -eq 0 ] || { echo "sanitize: kernel tests failed under the sanitizers (exit $status)"; exit "$status"; }
echo "sanitize: clean (ASan+UBSan, ${#files[@]} kernel test files)"
