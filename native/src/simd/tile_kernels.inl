// tile_kernels.inl: the tile functions of tile_ops.h, written once over a vector-traits type.
// Included by scalar.cpp, avx2.cpp and avx512.cpp inside their own namespace after defining
//   using V = <that ISA's traits>;
// and compiled with that ISA's flags. The last count % V::W elements of every loop run with
// ScalarTraits, whose per-element operations are the same ones: paths agree bit for bit.
//
// Deliberately no includes here beyond what the includer provides (tile_ops.h, philox.h,
// traits_scalar.h, <cstring>). No std:: templates either: their instances are shared between
// translation units at link time, so one compiled for AVX-512 could run on the scalar path.
// Scratch memory comes from threadScratch (dispatch.cpp, compiled for the baseline ISA).

using S = ScalarTraits;


// Splits [0, count) into a part processed W lanes at a time and a scalar tail.
static inline size_t vectorEnd(size_t count) { return count - count % size_t(V::W); }

// ---- decode / encode ------------------------------------------------------------------------

template <class T>
static void decodeRange(DType dtype, const uint8_t* data, size_t start, size_t begin, size_t end, float* out) {
  switch (dtype) {
    case DType::BF16:
      for (size_t j = begin; j < end; j += T::W) T::storeF(out + j, T::loadBF16(data + 2 * (start + j)));
      break;
    case DType::F16:
      for (size_t j = begin; j < end; j += T::W) T::storeF(out + j, T::loadF16(data + 2 * (start + j)));
      break;
    case DType::F64:
      for (size_t j = begin; j < end; j += T::W) T::storeF(out + j, T::loadF64(data + 8 * (start + j)));
      break;
    default:
      break;
  }
}

static void decodeTile(DType dtype, const uint8_t* data, size_t start, size_t count, float* out) {
  switch (dtype) {
    case DType::F32:
      std::memcpy(out, data + 4 * start, 4 * count);
      return;
    case DType::F8_E4M3:
    case DType::F8_E5M2: {
      const float* table = fp8Table(dtype);
      const uint8_t* src = data + start;
      for (size_t j = 0; j < count; ++j) out[j] = table[src[j]];
      return;
    }
    default: {
      const size_t split = vectorEnd(count);
      decodeRange<V>(dtype, data, start, 0, split, out);
      decodeRange<S>(dtype, data, start, split, count, out);
    }
  }
}

template <class T>
static void encodeRange(const float* src, size_t begin, size_t end, DType dtype, uint8_t* dst) {
  if (dtype == DType::BF16) {
    for (size_t j = begin; j < end; j += T::W) T::storeBF16(dst + 2 * j, T::loadF(src + j));
  } else {
    for (size_t j = begin; j < end; j += T::W) T::storeF16(dst + 2 * j, T::loadF(src + j));
  }
}

static void encodeTile(const float* src, size_t count, DType dtype, uint8_t* dst, size_t start) {
  if (dtype == DType::F32) {
    std::memcpy(dst + 4 * start, src, 4 * count);
    return;
  }
  uint8_t* at = dst + 2 * start;
  const size_t split = vectorEnd(count);
  encodeRange<V>(src, 0, split, dtype, at);
  encodeRange<S>(src, split, count, dtype, at);
}

static void subtractTile(float* ft, const float* base, size_t count) {
  const size_t split = vectorEnd(count);
  size_t j = 0;
  for (; j < split; j += V::W) V::storeF(ft + j, V::sub(V::loadF(ft + j), V::loadF(base + j)));
  for (; j < count; ++j) ft[j] = ft[j] - base[j];
}

// ---- reductions in the fixed lane order ----------------------------------------------------

// lanes[l] for l < 256 hold the lane sums; the tree adds them pairwise in a fixed pattern.
static double laneTree(double* lanes) {
  for (size_t s = kReduceLanes / 2; s >= 1; s /= 2)
    for (size_t l = 0; l < s; ++l) lanes[l] += lanes[l + s];
  return lanes[0];
}

static double absSumTile(const float* x, size_t count) {
  alignas(64) double lanes[kReduceLanes] = {};
  const size_t fullRows = count / kReduceLanes;
  for (size_t r = 0; r < fullRows; ++r)
    for (size_t l = 0; l < kReduceLanes; l += V::W) V::laneAddAbs(lanes + l, V::absF(V::loadF(x + r * kReduceLanes + l)));
  for (size_t j = fullRows * kReduceLanes; j < count; ++j) S::laneAddAbs(lanes + (j % kReduceLanes), S::absF(x[j]));
  return laneTree(lanes);
}

static double dotTile(const float* x, const float* y, size_t count) {
  alignas(64) double lanes[kReduceLanes] = {};
  const size_t fullRows = count / kReduceLanes;
  for (size_t r = 0; r < fullRows; ++r)
    for (size_t l = 0; l < kReduceLanes; l += V::W)
      V::laneAddDot(lanes + l, x + r * kReduceLanes + l, y + r * kReduceLanes + l);
  for (size_t j = fullRows * kReduceLanes; j < count; ++j)
    S::laneAddDot(lanes + (j % kReduceLanes), x + j, y + j);
  return laneTree(lanes);
}

template <class T>
static uint64_t countNonFiniteRange(const float* x, size_t begin, size_t end) {
  uint64_t n = 0;
  const typename T::I finiteMax = T::set1I(0x7F7FFFFFu);
  for (size_t j = begin; j < end; j += T::W) n += T::popcount(T::gtU(T::absBits(T::loadF(x + j)), finiteMax));
  return n;
}

static uint64_t countNonFiniteTile(const float* x, size_t count) {
  const size_t split = vectorEnd(count);
  return countNonFiniteRange<V>(x, 0, split) + countNonFiniteRange<S>(x, split, count);
}

static void absCountsTile(const float* x, size_t count, const double* thresholds, size_t nthresholds,
                          uint64_t* countsAbove, uint64_t* nonFinite) {
  const size_t split = vectorEnd(count);
  for (size_t t = 0; t < nthresholds; ++t) {
    uint64_t n = 0;
    size_t j = 0;
    for (; j < split; j += V::W) n += V::countAbove(V::absF(V::loadF(x + j)), thresholds[t]);
    for (; j < count; ++j) n += S::countAbove(S::absF(x[j]), thresholds[t]);
    countsAbove[t] += n;
  }
  *nonFinite += countNonFiniteTile(x, count);
}

static void absBitsTile(const float* x, size_t count, uint32_t* out) {
  const size_t split = vectorEnd(count);
  size_t j = 0;
  for (; j < split; j += V::W) V::storeI(out + j, V::absBits(V::loadF(x + j)));
  for (; j < count; ++j) out[j] = S::absBits(x[j]);
}

// ---- δ computed in registers: statistics and selection ----------------------------------------

// abs bits of δ = decode(ft) - decode(base) (base may be null) in registers; ft and base share
// dtype code D (1 = F32, 2 = BF16, 3 = F16).
template <class T, int D>
static typename T::F loadCoded(const uint8_t* data, size_t i) {
  if (D == 2) return T::loadBF16(data + 2 * i);
  if (D == 3) return T::loadF16(data + 2 * i);
  return T::loadF(reinterpret_cast<const float*>(data) + i);
}

template <class T, int D>
static typename T::I absDeltaBits(const uint8_t* ft, const uint8_t* base, size_t i) {
  typename T::F x = loadCoded<T, D>(ft, i);
  if (base) x = T::sub(x, loadCoded<T, D>(base, i));
  return T::absBits(x);
}

// absSumTile, absCounts and countNonFinite of one reduction tile of δ = decode(ft) -
// decode(base) (base may be null) computed in registers, in one pass: the same per-lane
// additions in the same order (a vector's lanes are consecutive lanes of the fixed order), so
// the same bits. D as bracketShared (1 = F32, 2 = BF16, 3 = F16).
template <class T, int D>
static void absStatsDeltaRange(const uint8_t* ft, const uint8_t* base, size_t start, size_t begin, size_t end,
                               double* lanes, const double* thresholds, size_t nthresholds, uint64_t* countsAbove,
                               uint64_t* nonFinite) {
  const typename T::I finiteMax = T::set1I(0x7F7FFFFFu);
  uint64_t notFinite = 0;
  for (size_t j = begin; j < end; j += T::W) {
    typename T::F x = loadCoded<T, D>(ft, start + j);
    if (base) x = T::sub(x, loadCoded<T, D>(base, start + j));
    const typename T::F a = T::absF(x);
    T::laneAddAbs(lanes + (j % kReduceLanes), a);
    notFinite += T::popcount(T::gtU(T::bitsOf(a), finiteMax));
    for (size_t t = 0; t < nthresholds; ++t) countsAbove[t] += T::countAbove(a, thresholds[t]);
  }
  *nonFinite += notFinite;
}

template <int D>
static double absStatsDeltaCoded(const uint8_t* ft, const uint8_t* base, size_t start, size_t count,
                                 const double* thresholds, size_t nthresholds, uint64_t* countsAbove,
                                 uint64_t* nonFinite) {
  alignas(64) double lanes[kReduceLanes] = {};
  const size_t split = vectorEnd(count);
  absStatsDeltaRange<V, D>(ft, base, start, 0, split, lanes, thresholds, nthresholds, countsAbove, nonFinite);
  absStatsDeltaRange<S, D>(ft, base, start, split, count, lanes, thresholds, nthresholds, countsAbove, nonFinite);
  return laneTree(lanes);
}

static double absStatsDeltaTile(int dtypeCode, const uint8_t* ft, const uint8_t* base, size_t start, size_t count,
                                const double* thresholds, size_t nthresholds, uint64_t* countsAbove,
                                uint64_t* nonFinite) {
  switch (dtypeCode) {
    case 1: return absStatsDeltaCoded<1>(ft, base, start, count, thresholds, nthresholds, countsAbove, nonFinite);
    case 2: return absStatsDeltaCoded<2>(ft, base, start, count, thresholds, nthresholds, countsAbove, nonFinite);
    default: return absStatsDeltaCoded<3>(ft, base, start, count, thresholds, nthresholds, countsAbove, nonFinite);
  }
}

// One model's brackets [b0, b1) over elements [start + begin, start + end). Branch-free: every
// vector stores its in-bracket lanes (possibly none) and advances by their count, so the cost
// does not depend on how often elements fall inside. Count-only entries skip the store.
template <class T, int D>
static void bracketModelRange(const BracketJob& job, const uint8_t* ft, size_t b0, size_t b1, size_t start,
                              size_t begin, size_t end, uint64_t* above, uint32_t** cursor) {
  for (size_t j = begin; j < end; j += T::W) {
    const typename T::I a = absDeltaBits<T, D>(ft, job.base, start + j);
    for (size_t b = b0; b < b1; ++b) {
      const typename T::M over = T::gtU(a, T::set1I(job.upper[b]));
      above[b] += T::popcount(over);
      if (job.lower[b] == kCollectNothingBits) continue;
      const typename T::M inside = T::mNot(T::mOr(over, T::gtU(T::set1I(job.lower[b]), a)));
      T::compressStoreI(cursor[b], inside, a);
      cursor[b] += T::popcount(inside);
    }
  }
}

// The common shapes (M <= 4 models with K <= 4 entries each) with every bound, count and
// cursor in registers and all inputs streamed side by side: the base is decoded once per vector.
// Counts above go to per-lane counters (one instruction, no mask transfer); entries whose lower
// bound is kCollectNothingBits only count.
template <class T, int D, int M, int K>
static void bracketFixedRange(const BracketJob& job, size_t start, size_t begin, size_t end, uint64_t* above,
                              uint32_t** cursor) {
  // Inside [lower, upper] <=> a - lower <= upper - lower (unsigned): one subtraction, one compare.
  typename T::I lower[M * K], upper[M * K], width[M * K], over[M * K];
  bool collect[M * K];
  uint32_t* at[M * K];
  for (int b = 0; b < M * K; ++b) {
    lower[b] = T::set1I(job.lower[b]);
    upper[b] = T::set1I(job.upper[b]);
    width[b] = T::set1I(job.upper[b] - job.lower[b]);
    over[b] = T::set1I(0);
    collect[b] = job.lower[b] != kCollectNothingBits;
    at[b] = cursor[b];
  }
  for (size_t j = begin; j < end; j += T::W) {
    const size_t i = start + j;
    const typename T::F base = job.base ? loadCoded<T, D>(job.base, i) : T::zeroF();
    // Fully unrolled, so that the counters and bounds stay in registers (a counter kept in
    // memory would chain every vector through a store and a reload).
#pragma GCC unroll 4
    for (int t = 0; t < M; ++t) {
      typename T::F x = loadCoded<T, D>(job.fts[t], i);
      if (job.base) x = T::sub(x, base);
      const typename T::I a = T::absBits(x);
#pragma GCC unroll 4
      for (int k = 0; k < K; ++k) {
        const int b = t * K + k;
        const typename T::M isOver = T::gtU(a, upper[b]);
        over[b] = T::countLanes(over[b], isOver);
        if (!collect[b]) continue;
        const typename T::M inside = T::leU(T::subI(a, lower[b]), width[b]);
        T::compressStoreI(at[b], inside, a);
        at[b] += T::popcount(inside);
      }
    }
  }
  for (int b = 0; b < M * K; ++b) {
    above[b] += T::sumLanes(over[b]);
    cursor[b] = at[b];
  }
}

template <int D, int M, int K>
static void bracketFixed(const BracketJob& job, size_t start, size_t count, uint64_t* above, uint32_t** cursor) {
  const size_t split = vectorEnd(count);
  bracketFixedRange<V, D, M, K>(job, start, 0, split, above, cursor);
  bracketFixedRange<S, D, M, K>(job, start, split, count, above, cursor);
}

// The fixed shape's function for this job (kFixedBracketModels × kFixedBracketEntries at most), or null.
template <int D>
static void (*bracketFixedFor(const BracketJob& job))(const BracketJob&, size_t, size_t, uint64_t*, uint32_t**) {
  const size_t k = job.firstBracket[1];
  for (size_t t = 1; t <= job.nfts; ++t)
    if (job.firstBracket[t] - job.firstBracket[t - 1] != k) return nullptr;
  switch (job.nfts * 10 + k) {
    case 11: return bracketFixed<D, 1, 1>;
    case 12: return bracketFixed<D, 1, 2>;
    case 21: return bracketFixed<D, 2, 1>;
    case 22: return bracketFixed<D, 2, 2>;
    case 31: return bracketFixed<D, 3, 1>;
    case 32: return bracketFixed<D, 3, 2>;
    case 41: return bracketFixed<D, 4, 1>;
    case 42: return bracketFixed<D, 4, 2>;
    case 13: return bracketFixed<D, 1, 3>;
    case 14: return bracketFixed<D, 1, 4>;
    case 23: return bracketFixed<D, 2, 3>;
    case 24: return bracketFixed<D, 2, 4>;
    case 33: return bracketFixed<D, 3, 3>;
    case 34: return bracketFixed<D, 3, 4>;
    case 43: return bracketFixed<D, 4, 3>;
    case 44: return bracketFixed<D, 4, 4>;
    default: return nullptr;
  }
}

template <int D>
static void bracketSharedCoded(const BracketJob& job, size_t start, size_t count, uint64_t* above,
                               uint32_t* const* values, size_t* nvalues) {
  uint32_t* cursor[kMaxBracketsPerPass];
  const size_t nb = job.firstBracket[job.nfts];
  for (size_t b = 0; b < nb; ++b) cursor[b] = values[b] + nvalues[b];
  if (const auto fixed = bracketFixedFor<D>(job)) {
    fixed(job, start, count, above, cursor);
  } else {
    uint64_t over[kMaxBracketsPerPass] = {};
    const size_t split = vectorEnd(count);
    // Model by model: the base's tile stays in L1 after the first one.
    for (size_t t = 0; t < job.nfts; ++t) {
      const size_t b0 = job.firstBracket[t], b1 = job.firstBracket[t + 1];
      bracketModelRange<V, D>(job, job.fts[t], b0, b1, start, 0, split, over, cursor);
      bracketModelRange<S, D>(job, job.fts[t], b0, b1, start, split, count, over, cursor);
    }
    for (size_t b = 0; b < nb; ++b) above[b] += over[b];
  }
  for (size_t b = 0; b < nb; ++b) nvalues[b] = size_t(cursor[b] - values[b]);
}

static void bracketShared(const BracketJob& job, size_t start, size_t count, uint64_t* above, uint32_t* const* values,
                          size_t* nvalues) {
  switch (job.dtypeCode) {
    case 1: return bracketSharedCoded<1>(job, start, count, above, values, nvalues);
    case 2: return bracketSharedCoded<2>(job, start, count, above, values, nvalues);
    default: return bracketSharedCoded<3>(job, start, count, above, values, nvalues);
  }
}

// ---- the generator --------------------------------------------------------------------------

static void philoxWordsTile(const RandomStream& stream, uint64_t start, size_t count, uint32_t* out) {
  uint64_t i = start;
  const uint64_t end = start + count;
  const uint64_t perStep = 4 * uint64_t(V::W);
  while (i < end) {
    const uint64_t block = i / 4;
    // V::W whole blocks at once when they fit and the low counter word does not wrap inside.
    if (i % 4 == 0 && end - i >= perStep && uint32_t(block) <= 0xFFFFFFFFu - uint32_t(V::W - 1)) {
      V::philoxBlocks(uint32_t(block), uint32_t(block >> 32), stream.streamLo, stream.streamHi, stream.seedLo,
                      stream.seedHi, out + (i - start));
      i += perStep;
      continue;
    }
    const Philox4x32Block words = philox4x32_10(uint32_t(block), uint32_t(block >> 32), stream.streamLo,
                                                stream.streamHi, stream.seedLo, stream.seedHi);
    for (unsigned w = unsigned(i % 4); w < 4 && i < end; ++w, ++i) out[i - start] = words.word[w];
  }
}

// ---- the fused merge ------------------------------------------------------------------------

// In place: w[j] holds decode(ft)[j] on entry and W_t[j] = f(weight)·sparsify(δ)[j] on exit.
template <class T>
static void weightedRange(const MergeTileModel& model, const TileBands& bands, const float* base, float* w,
                          const uint32_t* words, const float* prob, size_t begin, size_t end) {
  const typename T::F weight = T::set1F(model.weight);
  switch (model.kind) {
    case SparsifyKind::Dense: {
      const typename T::F factor = T::set1F(model.factor);
      for (size_t j = begin; j < end; j += T::W) {
        const typename T::F d = T::sub(T::loadF(w + j), T::loadF(base + j));
        T::storeF(w + j, T::mul(weight, T::mul(factor, d)));
      }
      break;
    }
    case SparsifyKind::Bands: {
      for (size_t j = begin; j < end; j += T::W) {
        const typename T::F d = T::sub(T::loadF(w + j), T::loadF(base + j));
        const typename T::I magnitude = T::absBits(d);
        const typename T::I index = T::addI(T::iota(), T::set1I(uint32_t(j)));
        typename T::M keptSoFar = T::mNone();
        typename T::F value = T::zeroF();
        for (int b = 0; b < bands.nbands; ++b) {
          const typename T::I threshold = T::set1I(bands.bits[b]);
          const typename T::M tieKept =
              T::mAnd(T::eqI(magnitude, threshold), T::mNot(T::gtS(index, T::set1I(uint32_t(bands.tieLimit[b])))));
          const typename T::M keep = T::mOr(T::gtU(magnitude, threshold), tieKept);
          // The first (tightest) band that keeps an element sets its factor.
          value = T::select(T::mAndNot(keep, keptSoFar), T::mul(T::set1F(bands.factor[b]), d), value);
          keptSoFar = T::mOr(keptSoFar, keep);
        }
        T::storeF(w + j, T::mul(weight, value));
      }
      break;
    }
    case SparsifyKind::Random: {
      const typename T::F rescale = T::set1F(model.rescale);
      const typename T::I keepBelow = T::set1I(model.keepBelow);
      for (size_t j = begin; j < end; j += T::W) {
        const typename T::F d = T::sub(T::loadF(w + j), T::loadF(base + j));
        const typename T::M keep = T::ltS(T::shiftRight(T::loadI(words + j), 8), keepBelow);
        T::storeF(w + j, T::mul(weight, T::select(keep, T::mul(rescale, d), T::zeroF())));
      }
      break;
    }
    case SparsifyKind::Della: {
      // u = (word >> 8)·2^-24 is exact in float32; kept when u < p.
      const typename T::F unit = T::set1F(0x1p-24f);
      const typename T::F factor = T::set1F(model.factor);  // 1 unless rescale l1 (x·1 = x exactly)
      for (size_t j = begin; j < end; j += T::W) {
        const typename T::F d = T::sub(T::loadF(w + j), T::loadF(base + j));
        const typename T::F p = T::loadF(prob + j);
        const typename T::F u = T::mul(T::floatFromInt(T::shiftRight(T::loadI(words + j), 8)), unit);
        const typename T::F value = model.divideByProb ? T::div(d, p) : T::mul(factor, d);
        T::storeF(w + j, T::mul(weight, T::select(T::ltF(u, p), value, T::zeroF())));
      }
      break;
    }
  }
}

// Smallest float above 1e-8: |div| < 1e-8 (in real numbers) exactly when |div| < this.
constexpr float kTinyDivisor = 0x1.5798f0p-27f;

// result[j] = b + λ·mixed, from the weighted values W_t of every model (see kernels.h).
template <class T>
static void combineRange(const MergeTileJob& job, const float* base, const float* weighted, float* result,
                         size_t begin, size_t end) {
  const size_t stride = kMergeTile;
  const typename T::F zero = T::zeroF();
  const typename T::F lambda = T::set1F(job.lambda);
  const typename T::F tinyDivisor = T::set1F(kTinyDivisor);
  for (size_t j = begin; j < end; j += T::W) {
    typename T::F mixed = zero;
    typename T::F divisor = zero;
    if (job.consensus == Consensus::None) {
      for (size_t t = 0; t < job.nmodels; ++t) mixed = T::add(mixed, T::loadF(weighted + t * stride + j));
      divisor = T::set1F(job.divisorAll);
    } else {
      // γ: the elected sign; only strictly negative totals elect minus (0 -> +1).
      typename T::F total = zero;
      if (job.consensus == Consensus::Sum) {
        for (size_t t = 0; t < job.nmodels; ++t) total = T::add(total, T::loadF(weighted + t * stride + j));
      } else {
        const typename T::F one = T::set1F(1.0f), minusOne = T::set1F(-1.0f);
        for (size_t t = 0; t < job.nmodels; ++t) {
          const typename T::F w = T::loadF(weighted + t * stride + j);
          const typename T::F sign = T::select(T::gtF(w, zero), one, T::select(T::ltF(w, zero), minusOne, zero));
          total = T::add(total, sign);
        }
      }
      const typename T::M electedMinus = T::ltF(total, zero);
      for (size_t t = 0; t < job.nmodels; ++t) {
        const typename T::F w = T::loadF(weighted + t * stride + j);
        // Zeros match neither sign, so they never count towards the divisor.
        const typename T::M agrees =
            T::mOr(T::mAndNot(T::gtF(w, zero), electedMinus), T::mAnd(T::ltF(w, zero), electedMinus));
        mixed = T::add(mixed, T::select(agrees, w, zero));
        divisor = T::add(divisor, T::select(agrees, T::set1F(job.models[t].weight), zero));
      }
    }
    if (job.normalize) {
      divisor = T::select(T::ltF(T::absF(divisor), tinyDivisor), T::set1F(1.0f), divisor);
      mixed = T::div(mixed, divisor);
    }
    T::storeF(result + j, T::add(T::loadF(base + j), T::mul(lambda, mixed)));
  }
}

// The fused loop of job.fusedDense (tile_ops.h): every operation of weightedRange (Dense,
// Random, Bands) and combineRange, in the same order, on registers, inputs decoded in place.
// D: 1 = F32, 2 = BF16, 3 = F16.
template <class T, int D>
static typename T::F loadInput(const uint8_t* data, size_t i) {
  if (D == 2) return T::loadBF16(data + 2 * i);
  if (D == 3) return T::loadF16(data + 2 * i);
  return T::loadF(reinterpret_cast<const float*>(data) + i);
}

// What the fused loop holds constant over a run of elements of one tile.
//
// Dense and Bands models share one form: v = f(factor)·d where abs(d) > keptAbove (as int32;
// abs bits are at most 0x7FFFFFFF, non-negative), else 0. Dense: keptAbove = -1 (always kept),
// the factor f(factor). Bands: within a run every band's rule is "abs > bits" or "abs >= bits"
// (fusedTile cuts the tile where a partial tie limit ends), i.e. abs > keepAbove_k; kept is
// their union, abs > min_k keepAbove_k, and the factor is that of the first band keeping the
// element: the last band's, overridden by steps s = 0, 1, ... (bands last - 1 down to 0):
// factor = stepFactor[s] where abs > stepAbove[s]. Every model has the same number of steps
// (nsteps); missing ones have stepAbove = 0x7FFFFFFF, which nothing exceeds.
//
// Exact shortcuts (each leaves every bit as the general formula gives it):
//  - unitLambda, unitWeights: f(lambda), or every f(weight), is 1, so 1·x = x is skipped (x is
//    never a signalling NaN: it comes out of arithmetic).
//  - divisorFloor > 0 (a consensus; every f(weight) >= kTinyDivisor, so not NaN): the divisor
//    is 0 (no model matches; then mixed = +0) or at least the least weight, so
//    max(divisor, divisorFloor) gives the same quotient as the clamp |div| < 1e-8 -> 1.
//  - fixedDivisor (no consensus): the clamped constant divisor; 1 skips the division.
struct FusedTile {
  const uint32_t* words;  // Philox words of Random model t at t·kMergeTile
  bool anyBands;
  int nsteps;
  int32_t keptAbove[kMaxModels];
  float factor[kMaxModels];
  int32_t stepAbove[kMaxFusedModels][kMaxBands];
  float stepFactor[kMaxFusedModels][kMaxBands];
  bool unitLambda, unitWeights;
  float divisorFloor, fixedDivisor;
};

// "abs > bits, or abs == bits when ties are kept" as abs > keepAbove (bits above 0x7FFFFFFF
// keep nothing, ties included).
static int32_t keepAboveFor(uint32_t bits, bool tiesKept) {
  if (bits > 0x7FFFFFFFu) return 0x7FFFFFFF;
  return tiesKept ? int32_t(bits) - 1 : int32_t(bits);
}

// keptAbove and the steps of band model t from its bands' keepAbove.
static void setBandRules(FusedTile& tile, size_t t, const TileBands& bands, const int32_t* keepAbove) {
  const int last = bands.nbands - 1;
  int32_t least = 0x7FFFFFFF;
  for (int k = 0; k <= last; ++k) least = keepAbove[k] < least ? keepAbove[k] : least;
  tile.keptAbove[t] = least;
  tile.factor[t] = last >= 0 ? bands.factor[last] : 0.0f;
  const int missing = tile.nsteps - (last > 0 ? last : 0);
  for (int s = 0; s < tile.nsteps; ++s) {
    const int k = last - 1 - (s - missing);
    tile.stepAbove[t][s] = s < missing ? 0x7FFFFFFF : keepAbove[k];
    tile.stepFactor[t][s] = s < missing ? 0.0f : bands.factor[k];
  }
}

// Values of the template parameter NS of fusedRange besides tile.nsteps = 0, 1.
constexpr int kNoBands = -1;  // no model is Bands: Dense is v = f(factor)·d, no compare
constexpr int kAnySteps = -2;

// NM: the model count when 1..4, 0 for any count; NS: see kNoBands.
// Model loops are unrolled (NM > 0: completely), so that every W_t stays in a register, and
// there is no branch per model but for Random models. NaN/Inf are not counted here: the range
// returns whether some |δ| is not finite, which every non-finite input causes (δ = x - b is
// then NaN or ±Inf); fusedTile recounts exactly in that rare case.
#define DPPA_UNROLL_MODELS _Pragma("GCC unroll 4")
template <class T, int D, size_t NM, int NS>
static bool fusedRange(const MergeTileJob& job, const FusedTile& tile, size_t start, size_t begin, size_t end) {
  const typename T::F zero = T::zeroF();
  const typename T::F lambda = T::set1F(job.lambda);
  const size_t nmodels = NM ? NM : job.nmodels;
  const int nsteps = NS == kAnySteps ? tile.nsteps : NS;
  // The per-model constants in locals (registers when NM > 0): the output is written through a
  // byte pointer, which may alias any memory, so whatever is read through job or tile would be
  // reloaded (and broadcast again) after every store. Random models: factor = f(rescale),
  // limit = keepBelow; the others: factor = the last band's (Dense: f(factor)), limit = keptAbove.
  constexpr size_t kCap = NM ? NM : kMaxModels;
  const uint8_t* data[kCap];
  bool random[kCap];
  typename T::F weight[kCap], factor[kCap], stepFactor[NS == 1 ? kCap : 1];
  typename T::I limit[kCap], stepAbove[NS == 1 ? kCap : 1];
  DPPA_UNROLL_MODELS
  for (size_t t = 0; t < nmodels; ++t) {
    const MergeTileModel& model = job.models[t];
    data[t] = model.data;
    random[t] = model.kind == SparsifyKind::Random;
    weight[t] = T::set1F(model.weight);
    factor[t] = T::set1F(random[t] ? model.rescale : tile.factor[t]);
    limit[t] = T::set1I(random[t] ? model.keepBelow : uint32_t(tile.keptAbove[t]));
    if (NS == 1) {
      stepFactor[t] = T::set1F(random[t] ? 0.0f : tile.stepFactor[t][0]);
      stepAbove[t] = T::set1I(random[t] ? 0x7FFFFFFFu : uint32_t(tile.stepAbove[t][0]));
    }
  }
  const uint8_t* const base = job.base;
  uint8_t* const out = job.out;
  const DType outDtype = job.outDtype;
  const Consensus consensus = job.consensus;
  const bool normalize = job.normalize, unitLambda = tile.unitLambda, unitWeights = tile.unitWeights;
  const float divisorFloor = tile.divisorFloor, fixedDivisor = tile.fixedDivisor;
  const uint32_t* const words = tile.words;
  typename T::I maxMagnitude = T::set1I(0);
  for (size_t j = begin; j < end; j += T::W) {
    const size_t i = start + j;
    const typename T::F b = loadInput<T, D>(base, i);
    typename T::F w[kCap];
    DPPA_UNROLL_MODELS
    for (size_t t = 0; t < nmodels; ++t) {
      const typename T::F d = T::sub(loadInput<T, D>(data[t], i), b);
      const typename T::I magnitude = T::absBits(d);
      maxMagnitude = T::maxU(maxMagnitude, magnitude);
      typename T::F v;
      if (__builtin_expect(random[t], 0)) {
        const typename T::M keep = T::ltS(T::shiftRight(T::loadI(words + t * kMergeTile + j), 8), limit[t]);
        v = T::mulOrZero(keep, factor[t], d);
      } else if (NS == kNoBands) {
        v = T::mul(factor[t], d);
      } else {
        typename T::F f = factor[t];
        if (NS == 1) {
          f = T::select(T::gtS(magnitude, stepAbove[t]), stepFactor[t], f);
        } else {
          for (int s = 0; s < nsteps; ++s)
            f = T::select(T::gtS(magnitude, T::set1I(uint32_t(tile.stepAbove[t][s]))), T::set1F(tile.stepFactor[t][s]), f);
        }
        v = T::mulOrZero(T::gtS(magnitude, limit[t]), f, d);
      }
      w[t] = unitWeights ? v : T::mul(weight[t], v);
    }
    typename T::F mixed = zero;
    if (consensus == Consensus::None) {
      DPPA_UNROLL_MODELS
      for (size_t t = 0; t < nmodels; ++t) mixed = T::add(mixed, w[t]);
      if (normalize && fixedDivisor != 1.0f) mixed = T::div(mixed, T::set1F(fixedDivisor));
    } else if (nmodels > 0) {
      // Only the sign of the total is used: starting from W_0 instead of 0 + W_0 (which turns
      // -0 into +0) changes no sign, as -0 and +0 are both not below 0.
      typename T::F total = w[0];
      if (consensus == Consensus::Sum) {
        DPPA_UNROLL_MODELS
        for (size_t t = 1; t < nmodels; ++t) total = T::add(total, w[t]);
      } else {
        const typename T::F one = T::set1F(1.0f), minusOne = T::set1F(-1.0f);
        total = zero;
        DPPA_UNROLL_MODELS
        for (size_t t = 0; t < nmodels; ++t) {
          const typename T::F sign =
              T::select(T::gtF(w[t], zero), one, T::select(T::ltF(w[t], zero), minusOne, zero));
          total = T::add(total, sign);
        }
      }
      // W_t matches γ when γ·W_t > 0 (never for zeros and NaN). mixed and the divisor start at
      // +0 and gain only non-zero terms: never -0, the one value that + 0 would change, so
      // terms are added only where they match, and the first one is taken as is (0 + x = x).
      const typename T::M electedMinus = T::ltF(total, zero);
      typename T::F divisor = zero;
      DPPA_UNROLL_MODELS
      for (size_t t = 0; t < nmodels; ++t) {
        const typename T::M agrees = T::gtF(T::negateIf(electedMinus, w[t]), zero);
        mixed = t == 0 ? T::select(agrees, w[t], zero) : T::addIf(agrees, mixed, w[t]);
        divisor = t == 0 ? T::select(agrees, weight[t], zero) : T::addIf(agrees, divisor, weight[t]);
      }
      if (normalize) {
        if (divisorFloor > 0.0f)
          divisor = T::maxF(divisor, T::set1F(divisorFloor));
        else
          divisor = T::select(T::ltF(T::absF(divisor), T::set1F(kTinyDivisor)), T::set1F(1.0f), divisor);
        mixed = T::div(mixed, divisor);
      }
    }
    const typename T::F r = T::add(b, unitLambda ? mixed : T::mul(lambda, mixed));
    switch (outDtype) {
      case DType::BF16: T::storeBF16(out + 2 * i, r); break;
      case DType::F16: T::storeF16(out + 2 * i, r); break;
      default: T::storeF(reinterpret_cast<float*>(out) + i, r); break;
    }
  }
  return T::maskBits(T::gtU(maxMagnitude, T::set1I(0x7F7FFFFFu))) != 0;
}
#undef DPPA_UNROLL_MODELS

// Elements [begin, end) of a tile: W lanes at a time, the rest with ScalarTraits.
template <int D, size_t NM, int NS>
static bool fusedRun(const MergeTileJob& job, const FusedTile& tile, size_t start, size_t begin, size_t end) {
  const size_t split = begin + (end - begin) / size_t(V::W) * size_t(V::W);
  const bool vectorSuspect = fusedRange<V, D, NM, NS>(job, tile, start, begin, split);
  return fusedRange<S, D, NM, NS>(job, tile, start, split, end) || vectorSuspect;
}

template <int D, int NS>
static bool fusedRunOf(const MergeTileJob& job, const FusedTile& tile, size_t start, size_t begin, size_t end) {
  switch (job.nmodels) {
    case 1: return fusedRun<D, 1, NS>(job, tile, start, begin, end);
    case 2: return fusedRun<D, 2, NS>(job, tile, start, begin, end);
    case 3: return fusedRun<D, 3, NS>(job, tile, start, begin, end);
    case 4: return fusedRun<D, 4, NS>(job, tile, start, begin, end);
    default: return fusedRun<D, 0, NS>(job, tile, start, begin, end);
  }
}

template <int D>
static bool fusedRunOf(const MergeTileJob& job, const FusedTile& tile, size_t start, size_t begin, size_t end) {
  if (!tile.anyBands) return fusedRunOf<D, kNoBands>(job, tile, start, begin, end);
  switch (tile.nsteps) {
    case 0: return fusedRunOf<D, 0>(job, tile, start, begin, end);
    case 1: return fusedRunOf<D, 1>(job, tile, start, begin, end);
    default: return fusedRunOf<D, kAnySteps>(job, tile, start, begin, end);
  }
}

template <int D>
static uint64_t countNonFiniteCoded(const uint8_t* data, size_t start, size_t count) {
  const typename V::I finiteMax = V::set1I(0x7F7FFFFFu);
  const size_t split = vectorEnd(count);
  uint64_t n = 0;
  for (size_t j = 0; j < split; j += V::W)
    n += V::popcount(V::gtU(V::absBits(loadInput<V, D>(data, start + j)), finiteMax));
  for (size_t j = split; j < count; ++j) n += S::popcount(S::absBits(loadInput<S, D>(data, start + j)) > 0x7F7FFFFFu);
  return n;
}

template <int D>
static void fusedTile(const MergeTileJob& job, const TileBands* bands, size_t start, size_t count,
                      uint64_t* nonFinite) {
  FusedTile tile;
  uint32_t* words = nullptr;
  bool weightsAboveTiny = job.consensus != Consensus::None && job.nmodels > 0;
  float leastWeight = 0.0f;
  tile.anyBands = false;
  tile.nsteps = 0;
  for (size_t t = 0; t < job.nmodels; ++t) {
    const MergeTileModel& model = job.models[t];
    weightsAboveTiny = weightsAboveTiny && model.weight >= kTinyDivisor;
    leastWeight = t == 0 || model.weight < leastWeight ? model.weight : leastWeight;
    if (model.kind == SparsifyKind::Bands) tile.anyBands = true;
    if (model.kind == SparsifyKind::Bands && bands[t].nbands - 1 > tile.nsteps) tile.nsteps = bands[t].nbands - 1;
    if (model.kind != SparsifyKind::Random) continue;
    if (!words) words = reinterpret_cast<uint32_t*>(threadScratch(ScratchSlot::TileModels, kMergeTile * job.nmodels));
    philoxWordsTile(model.stream, start, count, words + t * kMergeTile);
  }
  tile.words = words;
  tile.unitLambda = job.lambda == 1.0f;
  tile.unitWeights = true;
  for (size_t t = 0; t < job.nmodels; ++t) tile.unitWeights = tile.unitWeights && job.models[t].weight == 1.0f;
  tile.divisorFloor = weightsAboveTiny ? leastWeight : 0.0f;
  const float divisorAll = job.divisorAll;
  tile.fixedDivisor = divisorAll < kTinyDivisor && divisorAll > -kTinyDivisor ? 1.0f : divisorAll;

  // A band whose tie limit falls inside the tile keeps ties up to local index tieLimit: the
  // tile is cut after it (cuts in order), that band keeping ties before the cut only.
  int32_t keepAbove[kMaxFusedModels][kMaxBands];
  struct Cut {
    size_t at;
    size_t model;
    int band;
  } cuts[kMaxFusedModels * kMaxBands];
  size_t ncuts = 0;
  for (size_t t = 0; t < job.nmodels; ++t) {
    if (job.models[t].kind == SparsifyKind::Dense) {
      tile.keptAbove[t] = -1;
      tile.factor[t] = job.models[t].factor;
      for (int s = 0; s < tile.nsteps; ++s) {
        tile.stepAbove[t][s] = 0x7FFFFFFF;
        tile.stepFactor[t][s] = 0.0f;
      }
    }
    if (job.models[t].kind != SparsifyKind::Bands) continue;
    for (int k = 0; k < bands[t].nbands; ++k) {
      const int32_t tieLimit = bands[t].tieLimit[k];
      keepAbove[t][k] = keepAboveFor(bands[t].bits[k], tieLimit >= 0);
      if (tieLimit < 0 || size_t(tieLimit) + 1 >= count) continue;
      size_t c = ncuts++;
      for (; c > 0 && cuts[c - 1].at > size_t(tieLimit) + 1; --c) cuts[c] = cuts[c - 1];
      cuts[c] = {size_t(tieLimit) + 1, t, k};
    }
    setBandRules(tile, t, bands[t], keepAbove[t]);
  }
  bool suspect = job.nmodels == 0;  // no δ to watch: count the base
  size_t begin = 0;
  for (size_t c = 0; c <= ncuts; ++c) {
    const size_t end = c < ncuts ? cuts[c].at : count;
    if (end > begin) suspect = fusedRunOf<D>(job, tile, start, begin, end) || suspect;
    if (c < ncuts) {
      const size_t t = cuts[c].model;
      keepAbove[t][cuts[c].band] = keepAboveFor(bands[t].bits[cuts[c].band], false);
      setBandRules(tile, t, bands[t], keepAbove[t]);
    }
    begin = end;
  }
  if (!suspect) return;
  nonFinite[0] += countNonFiniteCoded<D>(job.base, start, count);
  for (size_t t = 0; t < job.nmodels; ++t) nonFinite[t + 1] += countNonFiniteCoded<D>(job.models[t].data, start, count);
}

static void mergeTile(const MergeTileJob& job, const TileBands* bands, size_t start, size_t count,
                      uint64_t* nonFinite) {
  switch (job.fusedDense) {
    case 1: return fusedTile<1>(job, bands, start, count, nonFinite);
    case 2: return fusedTile<2>(job, bands, start, count, nonFinite);
    case 3: return fusedTile<3>(job, bands, start, count, nonFinite);
    default: break;
  }
  float* base = threadScratch(ScratchSlot::TileBase, kMergeTile);
  float* weighted = threadScratch(ScratchSlot::TileModels, kMergeTile * job.nmodels);
  float* result = threadScratch(ScratchSlot::TileResult, kMergeTile);
  uint32_t* words = reinterpret_cast<uint32_t*>(threadScratch(ScratchSlot::TileWords, kMergeTile));
  const size_t split = vectorEnd(count);

  decodeTile(job.baseDtype, job.base, start, count, base);
  nonFinite[0] += countNonFiniteTile(base, count);
  for (size_t t = 0; t < job.nmodels; ++t) {
    const MergeTileModel& model = job.models[t];
    float* w = weighted + t * kMergeTile;
    decodeTile(model.dtype, model.data, start, count, w);
    nonFinite[t + 1] += countNonFiniteTile(w, count);
    if (model.kind == SparsifyKind::Random || model.kind == SparsifyKind::Della)
      philoxWordsTile(model.stream, start, count, words);
    const float* prob = model.kind == SparsifyKind::Della ? model.keepProb + (start - model.keepProbStart) : nullptr;
    weightedRange<V>(model, bands[t], base, w, words, prob, 0, split);
    weightedRange<S>(model, bands[t], base, w, words, prob, split, count);
  }
  combineRange<V>(job, base, weighted, result, 0, split);
  combineRange<S>(job, base, weighted, result, split, count);
  encodeTile(result, count, job.outDtype, job.out, start);
}

static void linearTile(const LinearTileJob& job, size_t start, size_t count, uint64_t* nonFinite) {
  float* acc = threadScratch(ScratchSlot::TileResult, kMergeTile);
  float* x = threadScratch(ScratchSlot::TileBase, kMergeTile);
  const size_t split = vectorEnd(count);
  std::memset(acc, 0, sizeof(float) * count);
  for (size_t i = 0; i < job.ninputs; ++i) {
    const LinearTileInput& in = job.inputs[i];
    decodeTile(in.dtype, in.data, start, count, x);
    nonFinite[i] += countNonFiniteTile(x, count);
    const V::F coeff = V::set1F(in.coeff);
    size_t j = 0;
    for (; j < split; j += V::W) V::storeF(acc + j, V::add(V::loadF(acc + j), V::mul(coeff, V::loadF(x + j))));
    for (; j < count; ++j) acc[j] = acc[j] + in.coeff * x[j];
  }
  encodeTile(acc, count, job.outDtype, job.out, start);
}

static const TileOps kTileOps = {
    kPathName,     decodeTile, encodeTile, subtractTile,       absSumTile, dotTile,   absCountsTile,
    countNonFiniteTile, absStatsDeltaTile, absBitsTile, bracketShared, philoxWordsTile, mergeTile, linearTile,
};
