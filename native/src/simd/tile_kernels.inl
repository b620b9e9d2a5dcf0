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
    for (size_t l = 0; l < kReduceLanes; l += V::W) V::laneAddAbs(lanes + l, x + r * kReduceLanes + l);
  for (size_t j = fullRows * kReduceLanes; j < count; ++j) S::laneAddAbs(lanes + (j % kReduceLanes), x + j);
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
    for (; j < split; j += V::W) n += V::countAbove(x + j, thresholds[t]);
    for (; j < count; ++j) n += S::countAbove(x + j, thresholds[t]);
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

// ---- selection ------------------------------------------------------------------------------

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

// The common shapes (M models with K brackets each, M·K <= 8) with every bound, count and
// cursor in registers and all inputs streamed side by side: the base is decoded once per vector.
// Counts above go to per-lane counters (one instruction, no mask transfer); entries whose lower
// bound is kCollectNothingBits only count.
template <class T, int D, int M, int K>
static void bracketFixedRange(const BracketJob& job, size_t start, size_t begin, size_t end, uint64_t* above,
                              uint32_t** cursor) {
  typename T::I lower[M * K], upper[M * K], over[M * K];
  bool collect[M * K];
  uint32_t* at[M * K];
  for (int b = 0; b < M * K; ++b) {
    lower[b] = T::set1I(job.lower[b]);
    upper[b] = T::set1I(job.upper[b]);
    over[b] = T::set1I(0);
    collect[b] = job.lower[b] != kCollectNothingBits;
    at[b] = cursor[b];
  }
  for (size_t j = begin; j < end; j += T::W) {
    const size_t i = start + j;
    const typename T::F base = job.base ? loadCoded<T, D>(job.base, i) : T::zeroF();
    for (int t = 0; t < M; ++t) {
      typename T::F x = loadCoded<T, D>(job.fts[t], i);
      if (job.base) x = T::sub(x, base);
      const typename T::I a = T::absBits(x);
      for (int k = 0; k < K; ++k) {
        const int b = t * K + k;
        const typename T::M isOver = T::gtU(a, upper[b]);
        over[b] = T::countLanes(over[b], isOver);
        if (!collect[b]) continue;
        const typename T::M inside = T::mNot(T::mOr(isOver, T::gtU(lower[b], a)));
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

// The fixed shape's function for this job, or null.
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
      for (size_t j = begin; j < end; j += T::W) {
        const typename T::F d = T::sub(T::loadF(w + j), T::loadF(base + j));
        const typename T::F p = T::loadF(prob + j);
        const typename T::F u = T::mul(T::floatFromInt(T::shiftRight(T::loadI(words + j), 8)), unit);
        const typename T::F value = model.divideByProb ? T::div(d, p) : d;
        T::storeF(w + j, T::mul(weight, T::select(T::ltF(u, p), value, T::zeroF())));
      }
      break;
    }
  }
}

// result[j] = b + λ·mixed, from the weighted values W_t of every model (see kernels.h).
template <class T>
static void combineRange(const MergeTileJob& job, const float* base, const float* weighted, float* result,
                         size_t begin, size_t end) {
  const size_t stride = kMergeTile;
  const typename T::F zero = T::zeroF();
  const typename T::F lambda = T::set1F(job.lambda);
  // Smallest float above 1e-8: |div| < 1e-8 (in real numbers) exactly when |div| < this.
  const typename T::F tinyDivisor = T::set1F(0x1.5798f0p-27f);
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
// Random) and combineRange (None) on registers, inputs decoded in place. D: 1 = F32, 2 = BF16, 3 = F16.
template <class T, int D>
static typename T::F loadInput(const uint8_t* data, size_t i) {
  if (D == 2) return T::loadBF16(data + 2 * i);
  if (D == 3) return T::loadF16(data + 2 * i);
  return T::loadF(reinterpret_cast<const float*>(data) + i);
}

template <class T, int D>
static void fusedDenseRange(const MergeTileJob& job, size_t start, size_t begin, size_t end, uint64_t* nonFinite,
                            const uint32_t* words) {
  const typename T::I finiteMax = T::set1I(0x7F7FFFFFu);
  const typename T::F zero = T::zeroF();
  const typename T::F lambda = T::set1F(job.lambda);
  typename T::F divisor = T::set1F(job.divisorAll);
  divisor = T::select(T::ltF(T::absF(divisor), T::set1F(0x1.5798f0p-27f)), T::set1F(1.0f), divisor);
  const size_t nmodels = job.nmodels;
  uint64_t baseNonFinite = 0;
  // Counted in locals: nonFinite points into an array shared with other workers' tasks
  // (updating it per vector would bounce its cache line between cores).
  uint64_t modelNonFinite[kMaxModels];
  for (size_t t = 0; t < nmodels; ++t) modelNonFinite[t] = 0;
  for (size_t j = begin; j < end; j += T::W) {
    const size_t i = start + j;
    const typename T::F b = loadInput<T, D>(job.base, i);
    baseNonFinite += T::popcount(T::gtU(T::absBits(b), finiteMax));
    typename T::F mixed = zero;
    for (size_t t = 0; t < nmodels; ++t) {
      const MergeTileModel& model = job.models[t];
      const typename T::F x = loadInput<T, D>(model.data, i);
      modelNonFinite[t] += T::popcount(T::gtU(T::absBits(x), finiteMax));
      const typename T::F d = T::sub(x, b);
      typename T::F v;
      if (model.kind == SparsifyKind::Random) {
        // As weightedRange: kept when (word >> 8) < keepBelow; words of model t at t·kMergeTile.
        const typename T::M keep =
            T::ltS(T::shiftRight(T::loadI(words + t * kMergeTile + j), 8), T::set1I(model.keepBelow));
        v = T::select(keep, T::mul(T::set1F(model.rescale), d), zero);
      } else {
        v = T::mul(T::set1F(model.factor), d);
      }
      mixed = T::add(mixed, T::mul(T::set1F(model.weight), v));
    }
    if (job.normalize) mixed = T::div(mixed, divisor);
    const typename T::F r = T::add(b, T::mul(lambda, mixed));
    switch (job.outDtype) {
      case DType::BF16: T::storeBF16(job.out + 2 * i, r); break;
      case DType::F16: T::storeF16(job.out + 2 * i, r); break;
      default: T::storeF(reinterpret_cast<float*>(job.out) + i, r); break;
    }
  }
  nonFinite[0] += baseNonFinite;
  for (size_t t = 0; t < nmodels; ++t) nonFinite[t + 1] += modelNonFinite[t];
}

template <int D>
static void fusedDenseTile(const MergeTileJob& job, size_t start, size_t count, uint64_t* nonFinite) {
  uint32_t* words = nullptr;
  for (size_t t = 0; t < job.nmodels; ++t) {
    if (job.models[t].kind != SparsifyKind::Random) continue;
    if (!words) words = reinterpret_cast<uint32_t*>(threadScratch(ScratchSlot::TileModels, kMergeTile * job.nmodels));
    philoxWordsTile(job.models[t].stream, start, count, words + t * kMergeTile);
  }
  const size_t split = vectorEnd(count);
  fusedDenseRange<V, D>(job, start, 0, split, nonFinite, words);
  fusedDenseRange<S, D>(job, start, split, count, nonFinite, words);
}

// The fused loop of job.fusedDense with bands and/or a consensus (job.fusedGeneral): the
// operations of weightedRange (Dense, Random, Bands) and combineRange, in the same order, with
// every W_t in registers and inputs decoded in place. D as fusedDenseRange.
template <class T, int D>
static void fusedGeneralRange(const MergeTileJob& job, const TileBands* bands, size_t start, size_t begin, size_t end,
                              uint64_t* nonFinite, const uint32_t* words) {
  const typename T::I finiteMax = T::set1I(0x7F7FFFFFu);
  const typename T::F zero = T::zeroF();
  const typename T::F lambda = T::set1F(job.lambda);
  const typename T::F tinyDivisor = T::set1F(0x1.5798f0p-27f);
  const size_t nmodels = job.nmodels;
  uint64_t counted[kMaxFusedModels + 1];
  for (size_t t = 0; t <= nmodels; ++t) counted[t] = 0;
  for (size_t j = begin; j < end; j += T::W) {
    const size_t i = start + j;
    const typename T::F b = loadInput<T, D>(job.base, i);
    counted[0] += T::popcount(T::gtU(T::absBits(b), finiteMax));
    typename T::F w[kMaxFusedModels];
    for (size_t t = 0; t < nmodels; ++t) {
      const MergeTileModel& model = job.models[t];
      const typename T::F x = loadInput<T, D>(model.data, i);
      counted[t + 1] += T::popcount(T::gtU(T::absBits(x), finiteMax));
      const typename T::F d = T::sub(x, b);
      typename T::F v;
      if (model.kind == SparsifyKind::Bands) {
        const TileBands& tb = bands[t];
        const typename T::I magnitude = T::absBits(d);
        const typename T::I index = T::addI(T::iota(), T::set1I(uint32_t(j)));
        typename T::M keptSoFar = T::mNone();
        v = zero;
        for (int k = 0; k < tb.nbands; ++k) {
          const typename T::I threshold = T::set1I(tb.bits[k]);
          const typename T::M tieKept =
              T::mAnd(T::eqI(magnitude, threshold), T::mNot(T::gtS(index, T::set1I(uint32_t(tb.tieLimit[k])))));
          const typename T::M keep = T::mOr(T::gtU(magnitude, threshold), tieKept);
          v = T::select(T::mAndNot(keep, keptSoFar), T::mul(T::set1F(tb.factor[k]), d), v);
          keptSoFar = T::mOr(keptSoFar, keep);
        }
      } else if (model.kind == SparsifyKind::Random) {
        const typename T::M keep =
            T::ltS(T::shiftRight(T::loadI(words + t * kMergeTile + j), 8), T::set1I(model.keepBelow));
        v = T::select(keep, T::mul(T::set1F(model.rescale), d), zero);
      } else {
        v = T::mul(T::set1F(model.factor), d);
      }
      w[t] = T::mul(T::set1F(model.weight), v);
    }
    typename T::F mixed = zero;
    typename T::F divisor = zero;
    if (job.consensus == Consensus::None) {
      for (size_t t = 0; t < nmodels; ++t) mixed = T::add(mixed, w[t]);
      divisor = T::set1F(job.divisorAll);
    } else {
      typename T::F total = zero;
      if (job.consensus == Consensus::Sum) {
        for (size_t t = 0; t < nmodels; ++t) total = T::add(total, w[t]);
      } else {
        const typename T::F one = T::set1F(1.0f), minusOne = T::set1F(-1.0f);
        for (size_t t = 0; t < nmodels; ++t) {
          const typename T::F sign =
              T::select(T::gtF(w[t], zero), one, T::select(T::ltF(w[t], zero), minusOne, zero));
          total = T::add(total, sign);
        }
      }
      const typename T::M electedMinus = T::ltF(total, zero);
      for (size_t t = 0; t < nmodels; ++t) {
        const typename T::M agrees =
            T::mOr(T::mAndNot(T::gtF(w[t], zero), electedMinus), T::mAnd(T::ltF(w[t], zero), electedMinus));
        mixed = T::add(mixed, T::select(agrees, w[t], zero));
        divisor = T::add(divisor, T::select(agrees, T::set1F(job.models[t].weight), zero));
      }
    }
    if (job.normalize) {
      divisor = T::select(T::ltF(T::absF(divisor), tinyDivisor), T::set1F(1.0f), divisor);
      mixed = T::div(mixed, divisor);
    }
    const typename T::F r = T::add(b, T::mul(lambda, mixed));
    switch (job.outDtype) {
      case DType::BF16: T::storeBF16(job.out + 2 * i, r); break;
      case DType::F16: T::storeF16(job.out + 2 * i, r); break;
      default: T::storeF(reinterpret_cast<float*>(job.out) + i, r); break;
    }
  }
  for (size_t t = 0; t <= nmodels; ++t) nonFinite[t] += counted[t];
}

template <int D>
static void fusedGeneralTile(const MergeTileJob& job, const TileBands* bands, size_t start, size_t count,
                             uint64_t* nonFinite) {
  uint32_t* words = nullptr;
  for (size_t t = 0; t < job.nmodels; ++t) {
    if (job.models[t].kind != SparsifyKind::Random) continue;
    if (!words) words = reinterpret_cast<uint32_t*>(threadScratch(ScratchSlot::TileModels, kMergeTile * job.nmodels));
    philoxWordsTile(job.models[t].stream, start, count, words + t * kMergeTile);
  }
  const size_t split = vectorEnd(count);
  fusedGeneralRange<V, D>(job, bands, start, 0, split, nonFinite, words);
  fusedGeneralRange<S, D>(job, bands, start, split, count, nonFinite, words);
}

static void mergeTile(const MergeTileJob& job, const TileBands* bands, size_t start, size_t count,
                      uint64_t* nonFinite) {
  if (job.fusedGeneral) {
    switch (job.fusedDense) {
      case 1: return fusedGeneralTile<1>(job, bands, start, count, nonFinite);
      case 2: return fusedGeneralTile<2>(job, bands, start, count, nonFinite);
      case 3: return fusedGeneralTile<3>(job, bands, start, count, nonFinite);
      default: break;
    }
  }
  switch (job.fusedDense) {
    case 1: return fusedDenseTile<1>(job, start, count, nonFinite);
    case 2: return fusedDenseTile<2>(job, start, count, nonFinite);
    case 3: return fusedDenseTile<3>(job, start, count, nonFinite);
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
    countNonFiniteTile, absBitsTile, bracketShared, philoxWordsTile, mergeTile, linearTile,
};
