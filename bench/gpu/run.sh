#!/usr/bin/env bash
# GPU check and benchmark of the CUDA kernels, in one go (fits 10 minutes on an H100):
#   1. build native/src/cuda standalone (cmake + nvcc) for this machine's GPU;
#   2. selftest: CUDA vs the plain C++ reference on awkward sizes (0, 1, 7, 4097, 37x129, ...),
#      with automatic and with tiny chunks: masks, selection, DARE and merges bit-identical,
#      sums in the documented order bit-identical (the naive-order distance is printed);
#   3. kernel GB/s and the ratio to a device-to-device cudaMemcpy measured in the same run;
#   3b. dppa_cuda_vs_cpu: GPU vs the project's CPU kernels, bit for bit, and an e2e timing
#      against them (multi-threaded SIMD);
#   4. an end-to-end DPPA-style merge of a generated tensor set from host memory on the GPU vs
#      the same on the CPU (the plain reference, one thread), outputs compared byte for byte.
# The table comes last. Exit status: non-zero on any build failure or mismatch.
# Env: DPPA_CUDA_ARCH (e.g. 90; default: the GPU's compute capability, else "80;90"),
#      BENCH_ELEMENTS (kernel tensor size, default 2^26), E2E_ELEMENTS (default 2^25),
#      BUILD_DIR (default build-cuda-bench), JOBS, DPPA_NO_CMAKE=1 (build with nvcc directly),
#      DPPA_PREBUILT=1 (use the programs already in BUILD_DIR, built elsewhere with nvcc: device
#      time is scarce, and the build needs no GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build-cuda-bench}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    if [ -x "$d/nvcc" ]; then export PATH="$d:$PATH"; break; fi
  done
fi
ARCH=${DPPA_CUDA_ARCH:-}
if [ -z "$ARCH" ] && command -v nvidia-smi >/dev/null 2>&1; then
  ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .' || true)
fi
ARCH=${ARCH:-80;90}
echo "== build (CUDA arch $ARCH, $JOBS jobs) =="
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
t0=$(date +%s)
if [ -n "${DPPA_PREBUILT:-}" ]; then
  for p in dppa_cuda_hostcheck dppa_cuda_selftest; do
    [ -x "$BUILD_DIR/$p" ] || { echo "DPPA_PREBUILT: $BUILD_DIR/$p is missing"; exit 1; }
  done
  echo "using the programs prebuilt in $BUILD_DIR"
elif [ -z "${DPPA_NO_CMAKE:-}" ] && command -v cmake >/dev/null 2>&1; then
  GEN=()
  command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
  cmake -S native/src/cuda -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=$ARCH" >/dev/null
  cmake --build "$BUILD_DIR" -j "$JOBS"
else
  # No cmake: nvcc and c++ directly (no dppa_cuda_vs_cpu in this mode).
  echo "cmake not found: building with nvcc directly"
  mkdir -p "$BUILD_DIR"
  GENCODE=()
  for a in ${ARCH//;/ }; do GENCODE+=("-gencode=arch=compute_$a,code=[sm_$a,compute_$a]"); done
  S=native/src/cuda
  c++ -std=c++17 -O2 -ffp-contract=off -I"$S" -c "$S/reference.cpp" -o "$BUILD_DIR/reference.o" &
  c++ -std=c++17 -O2 -ffp-contract=off -I"$S" "$S/hostcheck.cpp" "$S/reference.cpp" -o "$BUILD_DIR/dppa_cuda_hostcheck" &
  nvcc -std=c++17 -O3 -fmad=false "${GENCODE[@]}" -I"$S" -c "$S/kernels.cu" -o "$BUILD_DIR/kernels.o" &
  nvcc -std=c++17 -O3 -fmad=false "${GENCODE[@]}" -I"$S" -c "$S/merger.cu" -o "$BUILD_DIR/merger.o" &
  nvcc -std=c++17 -O3 -fmad=false "${GENCODE[@]}" -I"$S" -c "$S/selftest.cu" -o "$BUILD_DIR/selftest.o" &
  wait
  nvcc "${GENCODE[@]}" -cudart static "$BUILD_DIR/selftest.o" "$BUILD_DIR/kernels.o" "$BUILD_DIR/merger.o" \
    "$BUILD_DIR/reference.o" -o "$BUILD_DIR/dppa_cuda_selftest"
fi
echo "build: $(( $(date +%s) - t0 )) s"
rc=0
echo "== device element functions on the host (decode/encode/Philox vs reference) =="
"$BUILD_DIR/dppa_cuda_hostcheck" || rc=1
if [ -x "$BUILD_DIR/dppa_cuda_vs_cpu" ]; then
  echo "== plain reference vs the project's CPU kernels (no GPU involved) =="
  "$BUILD_DIR/dppa_cuda_vs_cpu" --ref | tail -2 || rc=1
  echo "== GPU vs the project's CPU kernels (every SIMD path), then e2e GPU vs CPU kernels =="
  "$BUILD_DIR/dppa_cuda_vs_cpu" --require-gpu --e2e-elements "${E2E_ELEMENTS:-33554432}" | grep -v ' ok ' || rc=1
fi
echo "== selftest (GPU vs plain reference) + kernel benchmark =="
"$BUILD_DIR/dppa_cuda_selftest" --require-gpu --bench --elements "${BENCH_ELEMENTS:-67108864}" \
  --e2e-elements "${E2E_ELEMENTS:-33554432}" || rc=1
echo "run.sh: $([ $rc -eq 0 ] && echo PASSED || echo FAILED) in $(( $(date +%s) - t0 )) s"
exit $rc
