#!/usr/bin/env sh
# Tries to build the native TF.js backend from a TensorFlow wheel for CI. Never fails the job:
# without the wheel (no pip index, no cache) or a compiler, tests fall back to WASM and the
# native parity test reports itself skipped. Options pass through (--wheel <path.whl>, --gpu).
cd "$(dirname "$0")/../.." || exit 0
if bun libs/tfjs-native/src/main.ts "$@"; then
  echo "ci-setup: native TF.js backend ready"
else
  echo "ci-setup: native TF.js backend not built (reason above); tests continue on WASM"
fi
exit 0
