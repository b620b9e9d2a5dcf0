// glue_merge.cpp: mergeTensor, linearCombine, and PCB's pcbScores, pcbMerge, orderHistogram and orderTails.
#include <cmath>
#include <memory>

#include "args.h"
#include "device.h"
#include "glue.h"

namespace dppa {
namespace addon {
namespace {

Napi::Object nonFiniteResult(Napi::Env env, const std::vector<double>& counts) {
  Napi::Float64Array array = Napi::Float64Array::New(env, counts.size());
  for (size_t i = 0; i < counts.size(); ++i) array[i] = counts[i];
  Napi::Object object = Napi::Object::New(env);
  object.Set("nonFinite", array);
  return object;
}

uint8_t* requireOut(Napi::Value value, const std::string& what, size_t n, DType dtype, Job& job) {
  size_t bytes = 0;
  uint8_t* out = requireTypedArray(value, napi_uint8_array, "Uint8Array", what, job, &bytes);
  if (bytes != n * dtypeSize(dtype))
    throwTypeError(value.Env(), what + " has " + std::to_string(bytes) + " bytes, expected " +
                                    std::to_string(n * dtypeSize(dtype)) + " (" + std::to_string(n) + " × " +
                                    dtypeName(dtype) + ")");
  return out;
}

Napi::Value MergeTensorJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto job = std::make_unique<Job>();
  Napi::Object object = requireObject(info[0], "mergeTensor(job)");
  MergeSpec spec;
  spec.base = requireTensor(object.Get("base"), "mergeTensor(job.base)", *job);
  const size_t n = spec.base.n;
  Napi::Value models = object.Get("models");
  if (!models.IsArray()) throwTypeError(env, "mergeTensor(job.models) must be an array");
  Napi::Array array = models.As<Napi::Array>();
  if (array.Length() > 64) throwTypeError(env, "mergeTensor: at most 64 models");
  for (uint32_t t = 0; t < array.Length(); ++t) {
    const std::string what = "mergeTensor(job.models[" + std::to_string(t) + "])";
    Napi::Object m = requireObject(array.Get(t), what);
    MergeModelSpec model;
    model.tensor = requireTensor(m, what, *job);
    if (model.tensor.n != n)
      throwTypeError(env, what + " has " + std::to_string(model.tensor.n) + " elements, base has " + std::to_string(n));
    model.weight = requireNumber(m.Get("weight"), what + ".weight");
    model.sparsify = requireSparsify(m.Get("sparsify"), what + ".sparsify", n, *job);
    spec.models.push_back(model);
  }
  const std::string consensus = requireString(object.Get("consensus"), "mergeTensor(job.consensus)");
  if (consensus == "none") spec.consensus = Consensus::None;
  else if (consensus == "sum") spec.consensus = Consensus::Sum;
  else if (consensus == "count") spec.consensus = Consensus::Count;
  else throwTypeError(env, "mergeTensor(job.consensus) must be 'none', 'sum' or 'count', got '" + consensus + "'");
  spec.normalize = requireBoolean(object.Get("normalize"), "mergeTensor(job.normalize)");
  spec.lambda = requireNumber(object.Get("lambda"), "mergeTensor(job.lambda)");
  spec.outDtype = requireOutputDType(object.Get("outDtype"), "mergeTensor(job.outDtype)");
  spec.out = requireOut(object.Get("out"), "mergeTensor(job.out)", n, spec.outDtype, *job);
  auto result = std::make_shared<std::vector<double>>();
  job->work = [spec, result, device = currentDevice()] { *result = routed::mergeTensor(device, spec); };
  job->result = [result](Napi::Env e) -> Napi::Value { return nonFiniteResult(e, *result); };
  return queueJob(env, std::move(job));
}

Napi::Value LinearCombineJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto job = std::make_unique<Job>();
  if (!info[0].IsArray()) throwTypeError(env, "linearCombine(inputs) must be an array");
  Napi::Array array = info[0].As<Napi::Array>();
  if (array.Length() == 0) throwTypeError(env, "linearCombine(inputs) must not be empty");
  std::vector<TensorView> inputs;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    inputs.push_back(requireTensor(array.Get(i), "linearCombine(inputs[" + std::to_string(i) + "])", *job));
    if (inputs.back().n != inputs[0].n)
      throwTypeError(env, "linearCombine: inputs[" + std::to_string(i) + "] has " + std::to_string(inputs.back().n) +
                              " elements, inputs[0] has " + std::to_string(inputs[0].n));
  }
  size_t ncoeffs = 0;
  const double* coeffs = reinterpret_cast<const double*>(
      requireTypedArray(info[1], napi_float64_array, "Float64Array", "linearCombine(coeffs)", *job, &ncoeffs));
  if (ncoeffs != inputs.size())
    throwTypeError(env, "linearCombine(coeffs) has " + std::to_string(ncoeffs) + " entries for " +
                            std::to_string(inputs.size()) + " inputs");
  const DType outDtype = requireOutputDType(info[3], "linearCombine(outDtype)");
  uint8_t* out = requireOut(info[2], "linearCombine(out)", inputs[0].n, outDtype, *job);
  auto result = std::make_shared<std::vector<double>>();
  job->work = [inputs, coeffs, out, outDtype, result] { *result = linearCombine(inputs, coeffs, out, outDtype); };
  job->result = [result](Napi::Env e) -> Napi::Value { return nonFiniteResult(e, *result); };
  return queueJob(env, std::move(job));
}

// T Float32Arrays of one length each (1 <= T <= kMaxPcbTasks); returns the pointers and the length.
std::pair<std::vector<float*>, size_t> requireFloatArrays(Napi::Value value, const std::string& what, Job& job) {
  Napi::Env env = value.Env();
  if (!value.IsArray()) throwTypeError(env, what + " must be an array of Float32Array");
  Napi::Array array = value.As<Napi::Array>();
  if (array.Length() == 0 || array.Length() > kMaxPcbTasks)
    throwTypeError(env, what + " must hold 1 to " + std::to_string(kMaxPcbTasks) + " arrays");
  std::vector<float*> pointers;
  size_t n = 0;
  for (uint32_t t = 0; t < array.Length(); ++t) {
    size_t length = 0;
    const std::string name = what + "[" + std::to_string(t) + "]";
    pointers.push_back(reinterpret_cast<float*>(requireTypedArray(array.Get(t), napi_float32_array, "Float32Array", name, job, &length)));
    if (t == 0) n = length;
    if (length != n) throwTypeError(env, name + " has " + std::to_string(length) + " elements, " + what + "[0] has " + std::to_string(n));
  }
  return {pointers, n};
}

// Each task's δ and its scores: T Float32Arrays each, all of one length.
struct PcbArrays {
  std::vector<const float*> deltas;
  std::vector<float*> scores;
  size_t n;
};
PcbArrays requirePcbArrays(Napi::Value deltas, Napi::Value scores, const std::string& fn, Job& job) {
  const auto d = requireFloatArrays(deltas, fn + "(deltas)", job);
  const auto s = requireFloatArrays(scores, fn + "(scores)", job);
  if (s.first.size() != d.first.size() || s.second != d.second)
    throwTypeError(deltas.Env(), fn + "(scores) must be " + std::to_string(d.first.size()) + " arrays of " +
                                     std::to_string(d.second) + " elements, as deltas");
  return {std::vector<const float*>(d.first.begin(), d.first.end()), s.first, d.second};
}

// Four parameters per task, none NaN, as Params (a struct of four doubles) in task order.
template <class Params>
std::vector<Params> requireTaskParams(Napi::Value value, const std::string& what, size_t tasks, Job& job) {
  size_t nparams = 0;
  const double* p = reinterpret_cast<const double*>(requireTypedArray(value, napi_float64_array, "Float64Array", what, job, &nparams));
  if (nparams != 4 * tasks)
    throwTypeError(value.Env(), what + " has " + std::to_string(nparams) + " entries, expected 4 per task (" + std::to_string(4 * tasks) + ")");
  for (size_t e = 0; e < nparams; ++e)
    if (std::isnan(p[e])) throwTypeError(value.Env(), what + "[" + std::to_string(e) + "] is NaN");
  std::vector<Params> params(tasks);
  for (size_t t = 0; t < tasks; ++t) params[t] = {p[4 * t], p[4 * t + 1], p[4 * t + 2], p[4 * t + 3]};
  return params;
}

// pcbScores(deltas: Float32Array[], params: Float64Array (clipLow, clipHigh, absMin, absMax per
// task), scores: Float32Array[]).
Napi::Value PcbScoresJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  const PcbArrays arrays = requirePcbArrays(info[0], info[2], "pcbScores", *job);
  const auto params = requireTaskParams<PcbTaskParams>(info[1], "pcbScores(params)", arrays.deltas.size(), *job);
  job->work = [arrays, params] { pcbScores(arrays.deltas, arrays.n, params.data(), arrays.scores); };
  job->result = [](Napi::Env e) -> Napi::Value { return e.Undefined(); };
  return queueJob(info.Env(), std::move(job));
}

// pcbMerge(deltas: Float32Array[], scores: Float32Array[], params: Float64Array (clipLow,
// clipHigh, threshold, max per task), out: Float32Array) -> { nonFinite: Float64Array }.
Napi::Value PcbMergeJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  const PcbArrays arrays = requirePcbArrays(info[0], info[1], "pcbMerge", *job);
  const auto params = requireTaskParams<PcbMergeParams>(info[2], "pcbMerge(params)", arrays.deltas.size(), *job);
  size_t outLength = 0;
  float* out = reinterpret_cast<float*>(requireTypedArray(info[3], napi_float32_array, "Float32Array", "pcbMerge(out)", *job, &outLength));
  if (outLength != arrays.n)
    throwTypeError(info.Env(), "pcbMerge(out) has " + std::to_string(outLength) + " elements, expected " + std::to_string(arrays.n));
  auto result = std::make_shared<std::vector<double>>();
  job->work = [arrays, params, out, result] {
    *result = pcbMerge(arrays.deltas, std::vector<const float*>(arrays.scores.begin(), arrays.scores.end()), arrays.n, params.data(), out);
  };
  job->result = [result](Napi::Env e) -> Napi::Value { return nonFiniteResult(e, *result); };
  return queueJob(info.Env(), std::move(job));
}

// orderHistogram(values: Float32Array, counts: Float64Array, shift, prefixMask, prefixValue).
Napi::Value OrderHistogramJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  size_t n = 0, bins = 0;
  const float* values = reinterpret_cast<const float*>(
      requireTypedArray(info[0], napi_float32_array, "Float32Array", "orderHistogram(values)", *job, &n));
  double* counts = reinterpret_cast<double*>(
      requireTypedArray(info[1], napi_float64_array, "Float64Array", "orderHistogram(counts)", *job, &bins));
  if (bins == 0 || bins > 65536 || (bins & (bins - 1)) != 0)
    throwTypeError(info.Env(), "orderHistogram(counts) must have a power of two <= 65536 entries, has " + std::to_string(bins));
  const uint32_t shift = uint32_t(requireInteger(info[2], "orderHistogram(shift)", 0, 31));
  const uint32_t prefixMask = requireUint32(info[3], "orderHistogram(prefixMask)");
  const uint32_t prefixValue = requireUint32(info[4], "orderHistogram(prefixValue)");
  job->work = [=] { orderHistogram(values, n, shift, prefixMask, prefixValue, counts, bins); };
  job->result = [](Napi::Env e) -> Napi::Value { return e.Undefined(); };
  return queueJob(info.Env(), std::move(job));
}

// orderTails(values: Float32Array, low: Uint32Array(k), high: Uint32Array(k), counts: Float64Array(2),
//            extremes?: Float64Array(4)).
Napi::Value OrderTailsJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  size_t n = 0, k = 0, highLength = 0, two = 0;
  const float* values = reinterpret_cast<const float*>(
      requireTypedArray(info[0], napi_float32_array, "Float32Array", "orderTails(values)", *job, &n));
  uint32_t* low = reinterpret_cast<uint32_t*>(
      requireTypedArray(info[1], napi_uint32_array, "Uint32Array", "orderTails(low)", *job, &k));
  uint32_t* high = reinterpret_cast<uint32_t*>(
      requireTypedArray(info[2], napi_uint32_array, "Uint32Array", "orderTails(high)", *job, &highLength));
  double* counts = reinterpret_cast<double*>(
      requireTypedArray(info[3], napi_float64_array, "Float64Array", "orderTails(counts)", *job, &two));
  if (k == 0 || highLength != k)
    throwTypeError(info.Env(), "orderTails(low, high) must have the same length k >= 1, have " + std::to_string(k) +
                                   " and " + std::to_string(highLength));
  if (two != 2) throwTypeError(info.Env(), "orderTails(counts) must have 2 entries, has " + std::to_string(two));
  for (int i = 0; i < 2; ++i)
    if (!(counts[i] >= 0 && counts[i] <= double(k) && counts[i] == double(size_t(counts[i]))))
      throwTypeError(info.Env(), "orderTails(counts) must hold whole numbers 0..k");
  double* extremes = nullptr;
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    size_t four = 0;
    extremes = reinterpret_cast<double*>(
        requireTypedArray(info[4], napi_float64_array, "Float64Array", "orderTails(extremes)", *job, &four));
    if (four != 4) throwTypeError(info.Env(), "orderTails(extremes) must have 4 entries, has " + std::to_string(four));
  }
  job->work = [=] {
    size_t lowCount = size_t(counts[0]), highCount = size_t(counts[1]);
    orderTails(values, n, k, low, &lowCount, high, &highCount, extremes);
    counts[0] = double(lowCount);
    counts[1] = double(highCount);
  };
  job->result = [](Napi::Env e) -> Napi::Value { return e.Undefined(); };
  return queueJob(info.Env(), std::move(job));
}

}  // namespace

void registerMerge(Napi::Env env, Napi::Object exports) {
  exports.Set("mergeTensor", Napi::Function::New(env, MergeTensorJs, "mergeTensor"));
  exports.Set("linearCombine", Napi::Function::New(env, LinearCombineJs, "linearCombine"));
  exports.Set("pcbScores", Napi::Function::New(env, PcbScoresJs, "pcbScores"));
  exports.Set("pcbMerge", Napi::Function::New(env, PcbMergeJs, "pcbMerge"));
  exports.Set("orderHistogram", Napi::Function::New(env, OrderHistogramJs, "orderHistogram"));
  exports.Set("orderTails", Napi::Function::New(env, OrderTailsJs, "orderTails"));
}

}  // namespace addon
}  // namespace dppa
