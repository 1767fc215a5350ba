import { describe, expect, test } from 'bun:test';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadNativeTfjs } from './load.ts';

const nativeAvailable = await loadNativeTfjs();
if (!nativeAvailable) {
  console.log(
    'skipping native parity tests: @tensorflow/tfjs-node is not built ' +
      '(run `bun run gsil setup tfjs-native`)',
  );
}

const require = createRequire(import.meta.url);
setWasmPaths(
  join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')), '/'),
);

/** Deterministic values in [-1, 1] without a random generator shared across backends. */
function waveMatrix(rows: number, cols: number, phase: number): number[][] {
  return Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => Math.sin(phase + 0.37 * i + 0.11 * j * j)),
  );
}

/** loss(W) = mean(tanh(X·W)²) and dloss/dW, on the named backend. */
async function lossAndGrad(backend: string, x: number[][], w: number[][]) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const xT = tf.tensor2d(x);
    const lossOf = (wT: tf.Tensor) => tf.mean(tf.square(tf.tanh(tf.matMul(xT, wT)))) as tf.Scalar;
    const { value, grad } = tf.valueAndGrad(lossOf)(tf.tensor2d(w));
    return { loss: value.dataSync()[0], grad: Array.from(grad.dataSync()) };
  });
}

describe.skipIf(!nativeAvailable)('native TF.js backend', () => {
  test('matmul gradient matches the hand calculation', async () => {
    await tf.setBackend('tensorflow');
    // loss = sum((X·W)²) with X·W = [[1, 3], [2.5, 5]]: 1 + 9 + 6.25 + 25 = 41.25;
    // dloss/dW = 2·Xᵀ·(X·W) = [[17, 36], [24, 52]].
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const { value, grad } = tf.valueAndGrad((w: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, w))))(
      tf.tensor2d([
        [0.5, -1],
        [0.25, 2],
      ]),
    );
    expect(value.dataSync()[0]).toBe(41.25);
    expect(Array.from(grad.dataSync())).toEqual([17, 36, 24, 52]);
  });

  test('matmul + gradient equal the WASM backend within 1e-5', async () => {
    const x = waveMatrix(32, 96, 0.3); // [batch, in]
    const w = waveMatrix(96, 48, 1.7).map((row) => row.map((v) => v * 0.1)); // [in, out]
    const native = await lossAndGrad('tensorflow', x, w);
    const wasm = await lossAndGrad('wasm', x, w);
    expect(Math.abs(native.loss - wasm.loss)).toBeLessThan(1e-5);
    const maxDiff = Math.max(...native.grad.map((g, i) => Math.abs(g - wasm.grad[i])));
    expect(maxDiff).toBeLessThan(1e-5);
    expect(native.loss).toBeGreaterThan(0.01); // not a degenerate all-zero comparison
  });
});
