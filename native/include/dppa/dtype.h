// dtype.h: the tensor element types the kernels read and write.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace dppa {

// Storage dtypes. Decode reads all of them; encode writes F32, F16 and BF16 only.
enum class DType : int32_t {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  F64 = 3,
  F8_E4M3 = 4,  // OCP E4M3FN: bias 7, no infinities, S.1111.111 is NaN
  F8_E5M2 = 5,  // bias 15, IEEE-like: the top byte of an f16
};

inline size_t dtypeSize(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::F64: return 8;
    case DType::F8_E4M3: return 1;
    case DType::F8_E5M2: return 1;
  }
  return 0;
}

inline bool isOutputDType(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// Parses the safetensors spelling ("BF16", "F8_E4M3", ...). Returns false when unknown.
inline bool parseDType(const std::string& name, DType* out) {
  static const struct { const char* name; DType type; } table[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
      {"F64", DType::F64}, {"F8_E4M3", DType::F8_E4M3}, {"F8_E5M2", DType::F8_E5M2},
  };
  for (const auto& entry : table) {
    if (name == entry.name) {
      *out = entry.type;
      return true;
    }
  }
  return false;
}

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::F8_E4M3: return "F8_E4M3";
    case DType::F8_E5M2: return "F8_E5M2";
  }
  return "?";
}

}  // namespace dppa
