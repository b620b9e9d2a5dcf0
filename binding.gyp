# The fallback build (node-gyp): the same CPU sources and flags as CMakeLists.txt. gyp cannot
# set flags per file, so each ISA file is its own static library with its own flags. Never
# -march=native; no FMA contraction anywhere (every SIMD path must give the scalar bits).
{
  "target_defaults": {
    "include_dirs": ["native/include"],
    "cflags": ["-fPIC", "-O3", "-ffp-contract=off", "-fno-fast-math"],
    "cflags_cc": ["-std=c++17", "-fexceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++20"],
    "defines": ["NAPI_VERSION=8"]
  },
  "targets": [
    {
      "target_name": "dppa_kernels",
      "type": "static_library",
      "sources": [
        "native/src/kernels/convert.cpp",
        "native/src/kernels/stats.cpp",
        "native/src/kernels/select.cpp",
        "native/src/kernels/combine.cpp",
        "native/src/kernels/della.cpp",
        "native/src/kernels/pcb.cpp",
        "native/src/pool/pool.cpp",
        "native/src/simd/scalar.cpp",
        "native/src/simd/dispatch.cpp"
      ]
    },
    {
      "target_name": "dppa_avx2",
      "type": "static_library",
      "sources": ["native/src/simd/avx2.cpp"],
      "cflags": ["-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "dppa_avx512",
      "type": "static_library",
      "sources": ["native/src/simd/avx512.cpp"],
      "cflags": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c",
                 "-Wno-maybe-uninitialized"]
    },
    {
      "target_name": "dppa",
      "sources": [
        "native/src/addon/addon.cpp",
        "native/src/addon/args.cpp",
        "native/src/addon/job.cpp",
        "native/src/addon/glue_control.cpp",
        "native/src/addon/device.cpp",
        "native/src/addon/glue_memory.cpp",
        "native/src/addon/glue_io.cpp",
        "native/src/addon/glue_convert.cpp",
        "native/src/addon/glue_stats.cpp",
        "native/src/addon/glue_merge.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "dependencies": ["dppa_kernels", "dppa_avx2", "dppa_avx512"],
      "libraries": ["-lpthread"]
    }
  ]
}
