#!/usr/bin/env sh
# Tries to build the native TF.js backend from a TensorFlow wheel for CI. Never fails the job:
# without the wheel (no pip index, no cache) or a compiler, tests fall back to WASM and the
# native parity test reports itself skipped. Options pass through (--wheel <path.whl>, --gpu).
cd "$(dirname "$0")/../.." || exit 0
# Bun from PATH when it is there, else the pinned one from the npm registry (a fresh machine
# has only Node.js and npm).
if command -v bun >/dev/null 2>&1; then bun=bun; else bun="npx --yes bun@1.4.5"; fi
if $bun libs/tfjs-native/src/main.ts "$@"; then
  echo "ci-setup: native TF.js backend ready"
else
  echo "ci-setup: native TF.js backend not built (reason above); tests continue on WASM"
fi
exit 0
