// One AdamW step of the policy against PyTorch: transformers' LlamaForCausalLM loaded
// from the same stories260K weights, the same padded batch, the bernoulli GSIL loss,
// clip_grad_norm_(1.0) and torch.optim.AdamW(lr 1e-3, weight_decay 0.1). The pinned numbers
// were printed once by that PyTorch script (torch 2.13, float32).

import { describe, expect, test } from 'bun:test';
import { assetFile } from '@gsil/assets';
import { importLlama2c, selectBackend } from '@gsil/model';
import { type Pair, Policy } from './policy.ts';

const { config, weights } = importLlama2c(await assetFile('stories260k', 'stories260K.bin'));

// Prompts and responses of different lengths, so that rows are right-padded.
const pairs: Pair[] = [
  {
    real: { promptIds: [1, 50, 60], responseIds: [70, 80, 90, 2] },
    generated: { promptIds: [1, 50, 60], responseIds: [110, 2] },
    refRealLogp: -20,
    refGeneratedLogp: -12,
  },
  {
    real: { promptIds: [1, 300], responseIds: [100, 2] },
    generated: { promptIds: [1, 300], responseIds: [120, 130, 140, 150, 2] },
    refRealLogp: -10,
    refGeneratedLogp: -25,
  },
];
const lossParams = { alpha: 0.5, beta: 0.1 };

// WASM is what a machine without the native binding trains on; the native backend runs
// when its binding loads (CI builds it). Both must match PyTorch.
const nativeLoads = await selectBackend('tensorflow', () => {}).then(
  () => true,
  () => false,
);

describe.each(['wasm', 'tensorflow'] as const)(
  'Policy.step on %s (flat AdamW, clipping on the device)',
  (backend) => {
    test.skipIf(backend === 'tensorflow' && !nativeLoads)(
      'matches one PyTorch AdamW step: loss, gradient norm, updated weights',
      async () => {
        await selectBackend(backend, () => {});
        const policy = new Policy(config, weights, {
          name: 'adamw',
          learningRate: 1e-3,
          weightDecay: 0.1,
          warmupSteps: 0,
          schedule: 'constant',
          maxGradNorm: 1,
        });
        try {
          const result = policy.step('bernoulli', [pairs], lossParams, 1e-3);
          expect(Math.abs(result.loss - 34.29584884643555)).toBeLessThan(1e-3);
          // float32 sums over 260K squared gradients in another order: WASM lands 1.4e-4 off.
          expect(Math.abs(result.gradNorm - 94.32620239257812) / 94.326).toBeLessThan(5e-4);
          const after = policy.exportWeights();
          const expected: Record<string, number[]> = {
            'model.layers.0.self_attn.q_proj.weight': [0.0453883, 0.0787397, -0.0099244, 0.0188933],
            'model.norm.weight': [2.4570632, 1.3661859, 1.7492632, 1.106721],
            'model.embed_tokens.weight': [-0.2947193, 0.5618394, 0.175405, 0.3405396],
          };
          for (const [name, values] of Object.entries(expected)) {
            const actual = Array.from(after.get(name)!.data.subarray(0, 4));
            for (let i = 0; i < 4; i++) expect(Math.abs(actual[i] - values[i])).toBeLessThan(1e-5);
          }
          // The step lowers the loss (PyTorch: 34.296 -> 19.234).
          const second = policy.step('bernoulli', [pairs], lossParams, 0);
          expect(Math.abs(second.loss - 19.233665466308594)).toBeLessThan(1e-2);
        } finally {
          policy.dispose();
        }
      },
    );
  },
);
