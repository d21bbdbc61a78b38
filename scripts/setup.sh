#!/usr/bin/env bash
# Sets up a fresh Debian machine for transfusion: system packages, npm packages, the native
# backend and the compiled CLI. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# libopenblas-dev: BLAS for the native backend; g++ builds it; dataset-fashion-mnist: one of
# the built-in datasets (optional for the rest); python3-torch: the PyTorch mirror of the model
# in python/ (training at scale with torchrun, and the tests that hold it equal to this one);
# chromium: the browser the web app's tests (test/web) drive headless through playwright-core;
# libegl1, libegl-mesa0, libgl1-mesa-dri: Mesa's OpenGL through EGL, where Dawn (the npm
# `webgpu` package) finds a WebGPU adapter on a machine without a GPU driver (test/webgpu).
packages=(g++ make python3 libopenblas-dev dataset-fashion-mnist python3-torch chromium
  libegl1 libegl-mesa0 libgl1-mesa-dri)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: apt-get not found; install ${missing[*]} yourself for the native backend" >&2
  fi
fi

echo "setup: installing npm packages (npm ci; builds the native backend)"
npm ci --no-audit --no-fund

if [ ! -f build/Release/transfusion_native.node ]; then
  echo "setup: the native backend did not build during npm ci; building it again to show why"
  npm run build:native
fi

echo "setup: compiling TypeScript"
npm run build
echo "setup: done"
