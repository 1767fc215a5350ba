// Times one forward+backward step of a stories260K-shaped decoder (dim 64, hidden 172,
// 5 layers, 8 heads, vocab 512) on one backend. Not a test: bun libs/tfjs-native/bench-step.ts wasm
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadNativeTfjs } from './src/load.ts';

const backend = process.argv[2] ?? 'tensorflow';
const [batch, seqLen, dim, hiddenDim, nLayers, nHeads, vocab] = [4, 256, 64, 172, 5, 8, 512];
const headDim = dim / nHeads;

if (backend === 'tensorflow' && !(await loadNativeTfjs())) throw new Error('native not built');
const require = createRequire(import.meta.url);
setWasmPaths(
  join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')), '/'),
);
await tf.setBackend(backend);

let seed = 1;
const init = (shape: number[]) =>
  tf.variable(tf.randomNormal(shape, 0, 0.05, 'float32', seed++) as tf.Tensor);
const embedding = init([vocab, dim]);
const layers = Array.from({ length: nLayers }, () => ({
  wq: init([dim, dim]),
  wk: init([dim, dim]),
  wv: init([dim, dim]),
  wo: init([dim, dim]),
  w1: init([dim, hiddenDim]),
  w3: init([dim, hiddenDim]),
  w2: init([hiddenDim, dim]),
}));
const tokens = tf.randomUniform([batch, seqLen], 0, vocab, 'int32', 7);
const targets = tf.oneHot(
  tf.reshape(tf.randomUniform([batch, seqLen], 0, vocab, 'int32', 8), [-1]),
  vocab,
);
const causalMask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([seqLen, seqLen]), -1, 0)), -1e9);

const heads = (x: tf.Tensor) =>
  tf.transpose(tf.reshape(x, [batch, seqLen, nHeads, headDim]), [0, 2, 1, 3]);

function loss(): tf.Scalar {
  // one-hot matmul, not gather: WASM has no UnsortedSegmentSum for gather's gradient
  let x = tf.matMul(tf.oneHot(tf.reshape(tokens, [-1]), vocab), embedding);
  for (const l of layers) {
    const [q, k, v] = [l.wq, l.wk, l.wv].map((w) => heads(tf.matMul(x, w)));
    const scores = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(headDim)), causalMask);
    const attn = tf.matMul(tf.softmax(scores), v); // [batch, heads, seq, headDim]
    const merged = tf.reshape(tf.transpose(attn, [0, 2, 1, 3]), [batch * seqLen, dim]);
    x = tf.add(x, tf.matMul(merged, l.wo));
    const gate = tf.mul(tf.sigmoid(tf.matMul(x, l.w1)), tf.matMul(x, l.w1));
    x = tf.add(x, tf.matMul(tf.mul(gate, tf.matMul(x, l.w3)), l.w2));
  }
  const logits = tf.matMul(x, embedding, false, true); // tied classifier, [batch*seq, vocab]
  return tf.losses.softmaxCrossEntropy(targets, logits) as tf.Scalar;
}

const stepMs: number[] = [];
let lastLoss = 0;
for (let step = 0; step < 7; step++) {
  const startMs = performance.now();
  const { value, grads } = tf.variableGrads(loss);
  lastLoss = (await value.data())[0];
  await Promise.all(Object.values(grads).map((g) => g.data()));
  tf.dispose([value, ...Object.values(grads)]);
  if (step >= 2) stepMs.push(performance.now() - startMs);
}
stepMs.sort((a, b) => a - b);
console.log(
  JSON.stringify({ backend, medianStepMs: Math.round(stepMs[2]), loss: lastLoss.toFixed(6) }),
);
