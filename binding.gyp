# Builds build/Release/transfusion_native.node (run through scripts/build-native.mjs).
# Portable flags only: -O3 for the baseline x86-64 / arm64 target; hot loops get an extra
# x86-64-v3 (AVX2/FMA) clone picked at load time (TF_CLONES in native/vecmath.h). No
# -ffast-math: kernels must keep IEEE semantics to agree with the js reference backend;
# -fno-math-errno and -fno-trapping-math only drop errno writes and FP-exception-flag
# fidelity, which lets sqrt inline and branchless selects vectorise.
{
  "targets": [
    {
      "target_name": "transfusion_native",
      "sources": [
        "native/addon.cc",
        "native/addon_nn.cc",
        "native/attention.cc",
        "native/conv.cc",
        "native/elementwise.cc",
        "native/gemm.cc",
        "native/layout.cc",
        "native/norms.cc",
        "native/optim.cc",
        "native/pool.cc",
        "native/rope.cc",
        "native/softmax.cc"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "libraries": ["-lopenblas", "-lpthread"],
      "defines": ["NAPI_VERSION=8"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CFLAGS": ["-O3", "-fno-math-errno", "-fno-trapping-math"]
      }
    }
  ]
}
