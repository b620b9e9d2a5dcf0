// args.cpp: see args.h.
#include "args.h"

#include <cmath>

namespace dppa {
namespace addon {

void throwTypeError(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, "dppa: " + message);
}

Napi::Object requireObject(Napi::Value value, const std::string& what) {
  if (!value.IsObject() || value.IsArray() || value.IsTypedArray())
    throwTypeError(value.Env(), what + " must be an object");
  return value.As<Napi::Object>();
}

double requireNumber(Napi::Value value, const std::string& what) {
  if (!value.IsNumber()) throwTypeError(value.Env(), what + " must be a number");
  const double x = value.As<Napi::Number>().DoubleValue();
  if (std::isnan(x)) throwTypeError(value.Env(), what + " must not be NaN");
  return x;
}

double requireInteger(Napi::Value value, const std::string& what, double min, double max) {
  const double x = requireNumber(value, what);
  if (!(x >= min && x <= max) || std::floor(x) != x)
    throwTypeError(value.Env(), what + " must be an integer in [" + std::to_string(int64_t(min)) + ", " +
                                    std::to_string(int64_t(max)) + "], got " + std::to_string(x));
  return x;
}

uint32_t requireUint32(Napi::Value value, const std::string& what) {
  return uint32_t(requireInteger(value, what, 0, 4294967295.0));
}

bool requireBoolean(Napi::Value value, const std::string& what) {
  if (!value.IsBoolean()) throwTypeError(value.Env(), what + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::string requireString(Napi::Value value, const std::string& what) {
  if (!value.IsString()) throwTypeError(value.Env(), what + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

uint8_t* requireTypedArray(Napi::Value value, napi_typedarray_type type, const char* typeName,
                           const std::string& what, Job& job, size_t* length) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type)
    throwTypeError(value.Env(), what + " must be a " + typeName);
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  Napi::ArrayBuffer buffer = array.ArrayBuffer();
  if (buffer.IsDetached()) throwTypeError(value.Env(), what + " is detached (its ArrayBuffer was transferred)");
  job.hold(value);
  *length = array.ElementLength();
  return static_cast<uint8_t*>(buffer.Data()) + array.ByteOffset();
}

DType requireInputDType(Napi::Value value, const std::string& what) {
  const std::string name = requireString(value, what);
  DType type;
  if (!parseDType(name, &type))
    throwTypeError(value.Env(), what + ": unknown dtype '" + name + "' (F32, F16, BF16, F64, F8_E4M3, F8_E5M2)");
  return type;
}

DType requireOutputDType(Napi::Value value, const std::string& what) {
  const DType type = requireInputDType(value, what);
  if (!isOutputDType(type))
    throwTypeError(value.Env(), what + ": cannot encode to " + dtypeName(type) + " (F32, F16 or BF16)");
  return type;
}

TensorView requireTensor(Napi::Value value, const std::string& what, Job& job) {
  Napi::Object object = requireObject(value, what);
  TensorView view;
  view.dtype = requireInputDType(object.Get("dtype"), what + ".dtype");
  size_t bytes = 0;
  view.data = requireTypedArray(object.Get("data"), napi_uint8_array, "Uint8Array", what + ".data", job, &bytes);
  const size_t size = dtypeSize(view.dtype);
  if (bytes % size != 0)
    throwTypeError(value.Env(), what + ".data has " + std::to_string(bytes) + " bytes, not a multiple of the " +
                                    dtypeName(view.dtype) + " size " + std::to_string(size));
  view.n = bytes / size;
  return view;
}

DeltaView requireDelta(Napi::Value value, const std::string& what, Job& job) {
  Napi::Object object = requireObject(value, what);
  DeltaView view;
  view.ft = requireTensor(object.Get("ft"), what + ".ft", job);
  Napi::Value base = object.Get("base");
  if (!base.IsUndefined()) {
    view.hasBase = true;
    view.base = requireTensor(base, what + ".base", job);
    if (view.base.n != view.ft.n)
      throwTypeError(value.Env(), what + ": base has " + std::to_string(view.base.n) + " elements, ft has " +
                                      std::to_string(view.ft.n));
  }
  return view;
}

BandRulesView requireBandRules(Napi::Value value, const std::string& what, size_t n, Job& job) {
  Napi::Object object = requireObject(value, what);
  BandRulesView rules;
  size_t nbits = 0, ncutoff = 0;
  rules.bits = reinterpret_cast<const uint32_t*>(
      requireTypedArray(object.Get("bits"), napi_uint32_array, "Uint32Array", what + ".bits", job, &nbits));
  rules.cutoff = reinterpret_cast<const double*>(
      requireTypedArray(object.Get("cutoff"), napi_float64_array, "Float64Array", what + ".cutoff", job, &ncutoff));
  if (nbits != ncutoff)
    throwTypeError(value.Env(), what + ": bits has " + std::to_string(nbits) + " entries, cutoff " +
                                    std::to_string(ncutoff));
  Napi::Value rows = object.Get("rows");
  rules.rows = rows.IsUndefined() ? 0 : size_t(requireInteger(rows, what + ".rows", 0, 9007199254740991.0));
  if (rules.rows > 0) {
    if (n % rules.rows != 0)
      throwTypeError(value.Env(), what + ".rows = " + std::to_string(rules.rows) + " does not divide " +
                                      std::to_string(n) + " elements");
    if (nbits % rules.rows != 0)
      throwTypeError(value.Env(), what + ": " + std::to_string(nbits) + " entries are not rows × bands");
    rules.nbands = nbits / rules.rows;
  } else {
    rules.nbands = nbits;
  }
  if (rules.nbands > 16) throwTypeError(value.Env(), what + ": at most 16 bands");
  return rules;
}

RandomStream requireStream(Napi::Value value, const std::string& what) {
  Napi::Object object = requireObject(value, what);
  RandomStream s;
  s.seedLo = requireUint32(object.Get("seedLo"), what + ".seedLo");
  s.seedHi = requireUint32(object.Get("seedHi"), what + ".seedHi");
  s.streamLo = requireUint32(object.Get("streamLo"), what + ".streamLo");
  s.streamHi = requireUint32(object.Get("streamHi"), what + ".streamHi");
  return s;
}

SparsifySpec requireSparsify(Napi::Value value, const std::string& what, size_t n, Job& job) {
  Napi::Object object = requireObject(value, what);
  const std::string kind = requireString(object.Get("kind"), what + ".kind");
  SparsifySpec sp;
  if (kind == "dense") {
    sp.kind = SparsifyKind::Dense;
    sp.factor = requireNumber(object.Get("factor"), what + ".factor");
  } else if (kind == "bands") {
    sp.kind = SparsifyKind::Bands;
    sp.rules = requireBandRules(object.Get("rules"), what + ".rules", n, job);
    size_t nfactor = 0;
    sp.bandFactor = reinterpret_cast<const double*>(
        requireTypedArray(object.Get("factor"), napi_float64_array, "Float64Array", what + ".factor", job, &nfactor));
    if (nfactor != sp.rules.nbands)
      throwTypeError(value.Env(), what + ".factor has " + std::to_string(nfactor) + " entries for " +
                                      std::to_string(sp.rules.nbands) + " bands");
  } else if (kind == "random") {
    sp.kind = SparsifyKind::Random;
    sp.stream = requireStream(object.Get("stream"), what + ".stream");
    sp.density = requireNumber(object.Get("density"), what + ".density");
    sp.rescale = requireNumber(object.Get("rescale"), what + ".rescale");
  } else if (kind == "della") {
    sp.kind = SparsifyKind::Della;
    sp.stream = requireStream(object.Get("stream"), what + ".stream");
    sp.density = requireNumber(object.Get("density"), what + ".density");
    sp.epsilon = requireNumber(object.Get("epsilon"), what + ".epsilon");
    sp.rows = size_t(requireInteger(object.Get("rows"), what + ".rows", 0, 9007199254740991.0));
    sp.rescale = requireNumber(object.Get("rescale"), what + ".rescale");
    // Optional: the `l1` rescale's constant (kept δ times factor; only with rescale 0).
    const Napi::Value factor = object.Get("factor");
    if (!factor.IsUndefined()) {
      sp.factor = requireNumber(factor, what + ".factor");
      if (!std::isfinite(sp.factor)) throwTypeError(value.Env(), what + ".factor must be finite");
      if (sp.rescale != 0 && sp.factor != 1)
        throwTypeError(value.Env(), what + ".factor applies only with rescale 0 (kept values divided by p are not scaled again)");
    }
    if (!(sp.epsilon >= 0) || !(sp.density - sp.epsilon > 0) || !(sp.density + sp.epsilon < 1))
      throwTypeError(value.Env(), what + ": della needs 0 <= epsilon, 0 < density - epsilon and density + epsilon < 1 "
                                         "(density " + std::to_string(sp.density) + ", epsilon " +
                                         std::to_string(sp.epsilon) + ")");
    if (sp.rescale != 0 && sp.rescale != 1) throwTypeError(value.Env(), what + ".rescale must be 0 or 1 for della");
    if (sp.rows > 0 && n % sp.rows != 0)
      throwTypeError(value.Env(), what + ".rows = " + std::to_string(sp.rows) + " does not divide " + std::to_string(n) +
                                      " elements");
  } else {
    throwTypeError(value.Env(), what + ".kind must be 'dense', 'bands', 'random' or 'della', got '" + kind + "'");
  }
  return sp;
}

}  // namespace addon
}  // namespace dppa
