// glue_stats.cpp: absStats, absHistogram, selectThresholds(Shared), sparsifyStats, gram.
#include <cmath>
#include <memory>

#include "args.h"
#include "device.h"
#include "glue.h"

namespace dppa {
namespace addon {
namespace {

Napi::Float64Array toFloat64Array(Napi::Env env, const std::vector<double>& values) {
  Napi::Float64Array array = Napi::Float64Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) array[i] = values[i];
  return array;
}

Napi::Value AbsStatsJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  const DeltaView in = requireDelta(info[0], "absStats(input)", *job);
  size_t nthresholds = 0;
  const double* thresholds = reinterpret_cast<const double*>(
      requireTypedArray(info[1], napi_float64_array, "Float64Array", "absStats(thresholds)", *job, &nthresholds));
  auto result = std::make_shared<AbsStatsResult>();
  job->work = [in, thresholds, nthresholds, result, device = currentDevice()] {
    *result = routed::absStats(device, in, thresholds, nthresholds);
  };
  job->result = [result, n = in.size()](Napi::Env env) -> Napi::Value {
    Napi::Object object = Napi::Object::New(env);
    object.Set("n", double(n));
    object.Set("sumAbs", result->sumAbs);
    object.Set("countsAbove", toFloat64Array(env, result->countsAbove));
    object.Set("nonFinite", result->nonFinite);
    return object;
  };
  return queueJob(info.Env(), std::move(job));
}

Napi::Value AbsHistogramJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  const DeltaView in = requireDelta(info[0], "absHistogram(input)", *job);
  const uint32_t shift = uint32_t(requireInteger(info[1], "absHistogram(shift)", 0, 31));
  const uint32_t bins = uint32_t(requireInteger(info[2], "absHistogram(bins)", 1, 65536));
  if ((bins & (bins - 1)) != 0) throwTypeError(info.Env(), "absHistogram(bins) must be a power of two");
  const uint32_t prefixMask = requireUint32(info[3], "absHistogram(prefixMask)");
  const uint32_t prefixValue = requireUint32(info[4], "absHistogram(prefixValue)");
  auto result = std::make_shared<std::vector<double>>();
  job->work = [=, device = currentDevice()] { *result = routed::absHistogram(device, in, shift, bins, prefixMask, prefixValue); };
  job->result = [result](Napi::Env env) -> Napi::Value { return toFloat64Array(env, *result); };
  return queueJob(info.Env(), std::move(job));
}

// A Float64Array of keep-counts, each an integer in [0, limit]; sets *nks.
const double* requireKs(Napi::Value value, const std::string& what, double limit, Job& job, size_t* nks) {
  const double* ks = reinterpret_cast<const double*>(requireTypedArray(value, napi_float64_array, "Float64Array", what, job, nks));
  for (size_t i = 0; i < *nks; ++i)
    if (!(ks[i] >= 0 && ks[i] <= limit) || std::floor(ks[i]) != ks[i])
      throwTypeError(value.Env(), what + "[" + std::to_string(i) + "] = " + std::to_string(ks[i]) +
                                      " must be an integer in [0, " + std::to_string(size_t(limit)) + "]");
  return ks;
}

// 'index' (default) or 'drop', from options.rule.
SelectRule optionalRule(Napi::Object options, const std::string& what) {
  Napi::Value value = options.Get("rule");
  if (value.IsUndefined()) return SelectRule::Index;
  const std::string name = requireString(value, what);
  if (name == "drop") return SelectRule::Drop;
  if (name != "index") throwTypeError(value.Env(), what + " must be 'index' or 'drop'");
  return SelectRule::Index;
}

Napi::Object bandRulesObject(Napi::Env env, const BandRules& rules) {
  Napi::Object object = Napi::Object::New(env);
  Napi::Uint32Array bits = Napi::Uint32Array::New(env, rules.bits.size());
  for (size_t i = 0; i < rules.bits.size(); ++i) bits[i] = rules.bits[i];
  object.Set("bits", bits);
  object.Set("cutoff", toFloat64Array(env, rules.cutoff));
  if (rules.rows > 0) object.Set("rows", double(rules.rows));
  return object;
}

Napi::Value SelectThresholdsJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  const DeltaView in = requireDelta(info[0], "selectThresholds(input)", *job);
  SelectRule rule = SelectRule::Index;
  size_t rows = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    Napi::Object options = requireObject(info[2], "selectThresholds(options)");
    rule = optionalRule(options, "selectThresholds(options.rule)");
    Napi::Value rowsValue = options.Get("rows");
    if (!rowsValue.IsUndefined()) rows = size_t(requireInteger(rowsValue, "selectThresholds(options.rows)", 0, 9007199254740991.0));
  }
  const size_t n = in.size();
  if (rows > 0 && n % rows != 0)
    throwTypeError(info.Env(), "selectThresholds: " + std::to_string(n) + " elements are not " + std::to_string(rows) +
                                   " equal rows");
  size_t nks = 0;
  const double* ks = requireKs(info[1], "selectThresholds(ks)", double(rows > 0 ? n / rows : n), *job, &nks);
  auto result = std::make_shared<BandRules>();
  job->work = [=, device = currentDevice()] { *result = routed::selectThresholds(device, in, ks, nks, rule, rows); };
  job->result = [result](Napi::Env env) -> Napi::Value { return bandRulesObject(env, *result); };
  return queueJob(info.Env(), std::move(job));
}

Napi::Value SelectThresholdsSharedJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  const std::string what = "selectThresholdsShared(input)";
  Napi::Object input = requireObject(info[0], what);
  SharedDeltaView in;
  Napi::Value base = input.Get("base");
  if (!base.IsUndefined()) {
    in.hasBase = true;
    in.base = requireTensor(base, what + ".base", *job);
  }
  Napi::Value fts = input.Get("fts");
  if (!fts.IsArray() || fts.As<Napi::Array>().Length() == 0)
    throwTypeError(info.Env(), what + ".fts must be a non-empty array");
  Napi::Array ftArray = fts.As<Napi::Array>();
  for (uint32_t t = 0; t < ftArray.Length(); ++t) {
    in.fts.push_back(requireTensor(ftArray.Get(t), what + ".fts[" + std::to_string(t) + "]", *job));
    const size_t expected = in.hasBase ? in.base.n : in.fts[0].n;
    if (in.fts.back().n != expected)
      throwTypeError(info.Env(), what + ".fts[" + std::to_string(t) + "] has " + std::to_string(in.fts.back().n) +
                                     " elements, " + (in.hasBase ? "base" : "fts[0]") + " has " + std::to_string(expected));
  }
  if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() != ftArray.Length())
    throwTypeError(info.Env(), "selectThresholdsShared(requests) must be an array with one entry per fine-tune");
  Napi::Array requestArray = info[1].As<Napi::Array>();
  std::vector<SelectRequest> requests(ftArray.Length());
  for (uint32_t t = 0; t < requestArray.Length(); ++t) {
    const std::string at = "selectThresholdsShared(requests[" + std::to_string(t) + "])";
    Napi::Object request = requireObject(requestArray.Get(t), at);
    requests[t].ks = requireKs(request.Get("ks"), at + ".ks", double(in.fts[0].n), *job, &requests[t].nks);
    requests[t].rule = optionalRule(request, at + ".rule");
  }
  auto result = std::make_shared<std::vector<BandRules>>();
  job->work = [=, device = currentDevice()] { *result = routed::selectThresholdsShared(device, in, requests); };
  job->result = [result](Napi::Env env) -> Napi::Value {
    Napi::Array array = Napi::Array::New(env, result->size());
    for (size_t t = 0; t < result->size(); ++t) array.Set(uint32_t(t), bandRulesObject(env, (*result)[t]));
    return array;
  };
  return queueJob(info.Env(), std::move(job));
}

Napi::Value SparsifyStatsJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  const DeltaView in = requireDelta(info[0], "sparsifyStats(input)", *job);
  const SparsifySpec sp = requireSparsify(info[1], "sparsifyStats(sparsify)", in.size(), *job);
  auto result = std::make_shared<SparsifyStatsResult>();
  job->work = [=, device = currentDevice()] { *result = routed::sparsifyStats(device, in, sp); };
  job->result = [result](Napi::Env env) -> Napi::Value {
    Napi::Object object = Napi::Object::New(env);
    object.Set("sumAbs", result->sumAbs);
    object.Set("sumAbsKept", result->sumAbsKept);
    object.Set("kept", result->kept);
    return object;
  };
  return queueJob(info.Env(), std::move(job));
}

Napi::Value GramJs(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  if (!info[0].IsArray()) throwTypeError(info.Env(), "gram(inputs) must be an array");
  Napi::Array array = info[0].As<Napi::Array>();
  std::vector<DeltaView> inputs;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    inputs.push_back(requireDelta(array.Get(i), "gram(inputs[" + std::to_string(i) + "])", *job));
    if (inputs.back().size() != inputs[0].size())
      throwTypeError(info.Env(), "gram: inputs[" + std::to_string(i) + "] has " + std::to_string(inputs.back().size()) +
                                     " elements, inputs[0] has " + std::to_string(inputs[0].size()));
  }
  auto result = std::make_shared<std::vector<double>>();
  job->work = [inputs, result] { *result = gram(inputs); };
  job->result = [result](Napi::Env env) -> Napi::Value { return toFloat64Array(env, *result); };
  return queueJob(info.Env(), std::move(job));
}

}  // namespace

void registerStats(Napi::Env env, Napi::Object exports) {
  exports.Set("absStats", Napi::Function::New(env, AbsStatsJs, "absStats"));
  exports.Set("absHistogram", Napi::Function::New(env, AbsHistogramJs, "absHistogram"));
  exports.Set("selectThresholds", Napi::Function::New(env, SelectThresholdsJs, "selectThresholds"));
  exports.Set("selectThresholdsShared", Napi::Function::New(env, SelectThresholdsSharedJs, "selectThresholdsShared"));
  exports.Set("sparsifyStats", Napi::Function::New(env, SparsifyStatsJs, "sparsifyStats"));
  exports.Set("gram", Napi::Function::New(env, GramJs, "gram"));
}

}  // namespace addon
}  // namespace dppa
