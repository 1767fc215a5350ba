import { describe, expect, test } from 'bun:test';
import * as tf from '@tensorflow/tfjs';
import type { LossKind } from './config';
import { type GsilInputs, gsilLoss } from './losses';

// Four pairs chosen so that r(y+) = [0.5, -1.25, 1.5, 0] and r(y-) = [-0.5, 1.5, 0, -2]:
// with (alpha, beta) = (1, 0) one hinge term of each side is inactive and one pair is
// misclassified, so value, gradient and accuracy all see both branches.
const POLICY_REAL = [-12.5, -30.25, -7.0, -20.0];
const REF_REAL = [-13.0, -29.0, -8.5, -20.0];
const POLICY_GENERATED = [-10.0, -25.0, -9.0, -15.0];
const REF_GENERATED = [-9.5, -26.5, -9.0, -13.0];
const REAL_TOKEN_COUNTS = [5, 12, 3, 8];

// Mean loss and its gradient w.r.t. [policyReal, refReal, policyGenerated, refGenerated],
// computed independently with PyTorch 2.13 float64 autograd (torch.nn.functional.logsigmoid,
// torch.sigmoid, torch.clamp(min=0), torch.exp on the same inputs; sft as -sum / 28 tokens),
// run once and pasted here. Keys are `${kind}@${alpha},${beta}`.
const REFERENCE: Record<string, { loss: number; grads: number[][] }> = {
  'bernoulli@0.01,2.0': {
    loss: 2.2514443971346365,
    grads: [
      [
        -0.00029669738204103624, -0.00030130400383929885, -0.0002940924803126927,
        -0.0002980073050552939,
      ],
      [
        0.00029669738204103624, 0.00030130400383929885, 0.0002940924803126927,
        0.0002980073050552939,
      ],
      [0.0022006777742768387, 0.0022059075196873075, 0.0022019926949447062, 0.002196702905270658],
      [
        -0.0022006777742768387, -0.0022059075196873075, -0.0022019926949447062,
        -0.002196702905270658,
      ],
    ],
  },
  'brier@0.01,2.0': {
    loss: 0.789495932572234,
    grads: [
      [-6.20656856286988e-5, -6.387412581971079e-5, -6.105273440386048e-5, -6.257771086838376e-5],
      [6.20656856286988e-5, 6.387412581971079e-5, 6.105273440386048e-5, 6.257771086838376e-5],
      [
        0.0004638759522510382, 0.00045793991664034797, 0.00046239021614914933,
        0.00046833959643887064,
      ],
      [
        -0.0004638759522510382, -0.00045793991664034797, -0.00046239021614914933,
        -0.00046833959643887064,
      ],
    ],
  },
  'hinge@0.01,2.0': {
    loss: 2.9975,
    grads: [
      [-0.0, -0.0, -0.0, -0.0],
      [0.0, 0.0, 0.0, 0.0],
      [0.0025, 0.0025, 0.0025, 0.0025],
      [-0.0025, -0.0025, -0.0025, -0.0025],
    ],
  },
  'kliep@0.01,2.0': {
    loss: 5.369307373296356,
    grads: [
      [-0.0025, -0.0025, -0.0025, -0.0025],
      [0.0025, 0.0025, 0.0025, 0.0025],
      [0.018380507569726992, 0.018751818453007406, 0.018472640247326626, 0.01810685746290253],
      [-0.018380507569726992, -0.018751818453007406, -0.018472640247326626, -0.01810685746290253],
    ],
  },
  'lsif@0.01,2.0': {
    loss: 19.7681232873874,
    grads: [
      [-0.01856523474189456, -0.01824316942476958, -0.018751818453007406, -0.018472640247326626],
      [0.01856523474189456, 0.01824316942476958, 0.018751818453007406, 0.018472640247326626],
      [0.1351372234083165, 0.1406522781178196, 0.1364953750828606, 0.13114331487274763],
      [-0.1351372234083165, -0.1406522781178196, -0.1364953750828606, -0.13114331487274763],
    ],
  },
  'spin@0.01,2.0': {
    loss: 1.4244359334512737,
    grads: [
      [-0.05960146101105877, -0.4979649311420519, -0.023712936588783394, -0.008993104981045778],
      [0.05960146101105877, 0.4979649311420519, 0.023712936588783394, 0.008993104981045778],
      [0.05960146101105877, 0.4979649311420519, 0.023712936588783394, 0.008993104981045778],
      [-0.05960146101105877, -0.4979649311420519, -0.023712936588783394, -0.008993104981045778],
    ],
  },
  'sft@0.01,2.0': {
    loss: 2.4910714285714284,
    grads: [
      [-0.03571428571428571, -0.03571428571428571, -0.03571428571428571, -0.03571428571428571],
      [0.0, 0.0, 0.0, 0.0],
      [0.0, 0.0, 0.0, 0.0],
      [0.0, 0.0, 0.0, 0.0],
    ],
  },
  'bernoulli@1.0,0.0': {
    loss: 1.4665329944584884,
    grads: [
      [-0.09438516719953637, -0.1943249652936728, -0.04560638095158908, -0.125],
      [0.09438516719953637, 0.1943249652936728, 0.04560638095158908, 0.125],
      [0.09438516719953637, 0.2043936190484109, 0.125, 0.029800730505529387],
      [-0.09438516719953637, -0.2043936190484109, -0.125, -0.029800730505529387],
    ],
  },
  'brier@1.0,0.0': {
    loss: 0.5262963549633103,
    grads: [
      [-0.044361729337318426, -0.06727716344897121, -0.013604059821395046, -0.0625],
      [0.044361729337318426, 0.06727716344897121, 0.013604059821395046, 0.0625],
      [0.04436172933731843, 0.06096916621377139, 0.0625, 0.0062577710868383625],
      [-0.04436172933731843, -0.06096916621377139, -0.0625, -0.0062577710868383625],
    ],
  },
  'hinge@1.0,0.0': {
    loss: 1.9375,
    grads: [
      [-0.25, -0.25, -0.0, -0.25],
      [0.25, 0.25, 0.0, 0.25],
      [0.25, 0.25, 0.25, 0.0],
      [-0.25, -0.25, -0.25, -0.0],
    ],
  },
  'kliep@1.0,0.0': {
    loss: 1.3683887533218275,
    grads: [
      [-0.25, -0.25, -0.25, -0.25],
      [0.25, 0.25, 0.25, 0.25],
      [0.15163266492815836, 1.1204222675845161, 0.25, 0.033833820809153176],
      [-0.15163266492815836, -1.1204222675845161, -0.25, -0.033833820809153176],
    ],
  },
  'lsif@1.0,0.0': {
    loss: 0.8297377159313845,
    grads: [
      [-0.41218031767503205, -0.07162619921504752, -1.1204222675845161, -0.25],
      [0.41218031767503205, 0.07162619921504752, 1.1204222675845161, 0.25],
      [0.09196986029286058, 5.021384230796916, 0.25, 0.0045789097221835455],
      [-0.09196986029286058, -5.021384230796916, -0.25, -0.0045789097221835455],
    ],
  },
  'sft@1.0,0.0': {
    loss: 2.4910714285714284,
    grads: [
      [-0.03571428571428571, -0.03571428571428571, -0.03571428571428571, -0.03571428571428571],
      [0.0, 0.0, 0.0, 0.0],
      [0.0, 0.0, 0.0, 0.0],
      [0.0, 0.0, 0.0, 0.0],
    ],
  },
  'bernoulli@1.0,0.25': {
    loss: 1.4771558511459788,
    grads: [
      [-0.08020532520615174, -0.18276464465750122, -0.03701179950792237, -0.10945587477855047],
      [0.08020532520615174, 0.18276464465750122, 0.03701179950792237, 0.10945587477855047],
      [0.10945587477855047, 0.21298820049207762, 0.14054412522144955, 0.03701179950792237],
      [-0.10945587477855047, -0.21298820049207762, -0.14054412522144955, -0.03701179950792237],
    ],
  },
  'brier@1.0,0.25': {
    loss: 0.5266134314561117,
    grads: [
      [-0.034952677670917406, -0.07186742022860756, -0.009336539189396142, -0.0538816426777199],
      [0.034952677670917406, 0.07186742022860756, 0.009336539189396142, 0.0538816426777199],
      [0.053881642677719895, 0.05372807340393143, 0.06918539869107927, 0.009336539189396148],
      [-0.053881642677719895, -0.05372807340393143, -0.06918539869107927, -0.009336539189396148],
    ],
  },
  'hinge@1.0,0.25': {
    loss: 1.9375,
    grads: [
      [-0.25, -0.25, -0.0, -0.25],
      [0.25, 0.25, 0.0, 0.25],
      [0.25, 0.25, 0.25, 0.0],
      [-0.25, -0.25, -0.25, -0.0],
    ],
  },
  'kliep@1.0,0.25': {
    loss: 1.5603007048038307,
    grads: [
      [-0.25, -0.25, -0.25, -0.25],
      [0.25, 0.25, 0.25, 0.25],
      [0.19470019576785122, 1.4386506690014327, 0.32100635417193535, 0.043443485862611285],
      [-0.19470019576785122, -1.4386506690014327, -0.32100635417193535, -0.043443485862611285],
    ],
  },
  'lsif@1.0,0.25': {
    loss: 2.044235771446527,
    grads: [
      [-0.5292500041531687, -0.09196986029286058, -1.4386506690014327, -0.32100635417193535],
      [0.5292500041531687, 0.09196986029286058, 1.4386506690014327, 0.32100635417193535],
      [0.15163266492815836, 8.27886298967308, 0.412180317675032, 0.007549345855579626],
      [-0.15163266492815836, -8.27886298967308, -0.412180317675032, -0.007549345855579626],
    ],
  },
  'spin@1.0,0.25': {
    loss: 0.6669976788631293,
    grads: [
      [-0.027363968694637617, -0.041588159921675874, -0.02545833750287064, -0.02359629179988409],
      [0.027363968694637617, 0.041588159921675874, 0.02545833750287064, 0.02359629179988409],
      [0.027363968694637617, 0.041588159921675874, 0.02545833750287064, 0.02359629179988409],
      [-0.027363968694637617, -0.041588159921675874, -0.02545833750287064, -0.02359629179988409],
    ],
  },
  'sft@1.0,0.25': {
    loss: 2.4910714285714284,
    grads: [
      [-0.03571428571428571, -0.03571428571428571, -0.03571428571428571, -0.03571428571428571],
      [0.0, 0.0, 0.0, 0.0],
      [0.0, 0.0, 0.0, 0.0],
      [0.0, 0.0, 0.0, 0.0],
    ],
  },
};

function inputs(): GsilInputs {
  return {
    policyRealLogps: tf.tensor1d(POLICY_REAL),
    refRealLogps: tf.tensor1d(REF_REAL),
    policyGeneratedLogps: tf.tensor1d(POLICY_GENERATED),
    refGeneratedLogps: tf.tensor1d(REF_GENERATED),
    realTokenCounts: REAL_TOKEN_COUNTS,
  };
}

function expectClose(actual: ArrayLike<number>, expected: number[], label: string) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    // float32 against float64: relative 1e-5 plus an absolute floor for tiny gradients.
    const tolerance = 1e-5 * Math.abs(expected[i]) + 1e-7;
    if (Math.abs(actual[i] - expected[i]) > tolerance) {
      throw new Error(`${label}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

describe('gsilLoss against PyTorch autograd', () => {
  for (const [key, reference] of Object.entries(REFERENCE)) {
    const [kind, setting] = key.split('@') as [LossKind, string];
    const [alpha, beta] = setting.split(',').map(Number);
    test(`${kind} alpha=${alpha} beta=${beta}: value and gradients`, () => {
      const base = inputs();
      const names = [
        'policyRealLogps',
        'refRealLogps',
        'policyGeneratedLogps',
        'refGeneratedLogps',
      ] as const;
      const xs = names.map((name) => base[name]!);
      const lossAndGrads = tf.valueAndGrads((a, b, c, d) => {
        const out = gsilLoss(
          kind,
          {
            policyRealLogps: a as tf.Tensor1D,
            refRealLogps: b as tf.Tensor1D,
            policyGeneratedLogps: c as tf.Tensor1D,
            refGeneratedLogps: d as tf.Tensor1D,
            realTokenCounts: REAL_TOKEN_COUNTS,
          },
          { alpha, beta },
        );
        out.dispose();
        return out.loss;
      });
      // sft does not depend on the reference or generated logps (tf.grads rejects that).
      const { value, grads } =
        kind === 'sft'
          ? tf.valueAndGrads(
              (a) =>
                gsilLoss(
                  kind,
                  { policyRealLogps: a as tf.Tensor1D, realTokenCounts: REAL_TOKEN_COUNTS },
                  { alpha, beta },
                ).loss,
            )([xs[0]])
          : lossAndGrads(xs);
      expectClose([value.dataSync()[0]], [reference.loss], `${key} loss`);
      grads.forEach((grad, i) => {
        expectClose(grad.dataSync(), reference.grads[i], `${key} d/${names[i]}`);
      });
    });
  }
});

describe('gsilLoss metrics', () => {
  test('bernoulli (1, 0): parts, rewards, margin, accuracy', () => {
    const m = gsilLoss('bernoulli', inputs(), { alpha: 1, beta: 0 }).metrics();
    // lossReal / lossGenerated from PyTorch: mean(-logsigmoid(f+)), mean(-logsigmoid(-f-)).
    expectClose([m.lossReal, m.lossGenerated], [0.7176416310170444, 0.7488913634414444], 'parts');
    expectClose([m.loss], [1.4665329944584884], 'loss');
    // By hand: mean r+ = 0.75 / 4, mean r- = -1 / 4; pairs 0, 2, 3 have f+ > f-.
    expectClose(
      [m.rewardsReal, m.rewardsGenerated, m.rewardsMargin],
      [0.1875, -0.25, 0.4375],
      'rewards',
    );
    expect(m.accuracy).toBe(0.75);
  });

  test('bernoulli (0.01, 2): rewards are f = alpha * r + beta', () => {
    const m = gsilLoss('bernoulli', inputs(), { alpha: 0.01, beta: 2 }).metrics();
    expectClose([m.lossReal, m.lossGenerated], [0.12670983214649767, 2.124734564988139], 'parts');
    expectClose(
      [m.rewardsReal, m.rewardsGenerated, m.rewardsMargin],
      [2.001875, 1.9975, 0.004375],
      'rewards',
    );
    expect(m.accuracy).toBe(0.75);
  });

  test('spin reports beta * r as rewards and its whole loss as the real part', () => {
    const m = gsilLoss('spin', inputs(), { alpha: 1, beta: 0.5 }).metrics();
    expectClose([m.rewardsReal, m.rewardsGenerated], [0.09375, -0.125], 'rewards');
    expectClose([m.lossReal, m.lossGenerated], [0.6936555823537194, 0], 'parts');
  });

  test('sft needs only the demonstrations and token counts', () => {
    const m = gsilLoss(
      'sft',
      {
        policyRealLogps: tf.tensor1d(POLICY_REAL),
        realTokenCounts: tf.tensor1d(REAL_TOKEN_COUNTS),
      },
      { alpha: 1, beta: 0 },
    ).metrics();
    // 69.75 nats over 28 tokens.
    expectClose([m.loss], [69.75 / 28], 'loss');
    expect(Number.isNaN(m.rewardsReal)).toBe(true);
  });

  test('metrics() can be read twice and leaks no tensors', () => {
    const base = inputs();
    const before = tf.memory().numTensors;
    const out = gsilLoss('hinge', base, { alpha: 1, beta: 0 });
    const first = out.metrics();
    expect(out.metrics()).toBe(first);
    out.loss.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('gsilLoss in a training step', () => {
  test('optimizer.minimize moves a variable and metrics survive its tidy', () => {
    // A policy logp offset as the only trainable variable: bernoulli pushes r+ up, r- down.
    const shift = tf.variable(tf.zeros([4]));
    const optimizer = tf.train.sgd(1);
    let metrics: (() => unknown) | undefined;
    optimizer.minimize(() => {
      const out = gsilLoss(
        'bernoulli',
        { ...inputs(), policyRealLogps: tf.tensor1d(POLICY_REAL).add(shift) as tf.Tensor1D },
        { alpha: 1, beta: 0 },
      );
      metrics = out.metrics;
      return out.loss;
    });
    // d loss / d policyReal from the PyTorch reference above, times -lr.
    expectClose(
      shift.dataSync(),
      REFERENCE['bernoulli@1.0,0.0'].grads[0].map((g) => -g),
      'step',
    );
    expect((metrics!() as { accuracy: number }).accuracy).toBe(0.75);
  });

  test('bernoulli is finite for logits far in the tails', () => {
    const big = gsilLoss(
      'bernoulli',
      {
        policyRealLogps: tf.tensor1d([-1000]),
        refRealLogps: tf.tensor1d([0]),
        policyGeneratedLogps: tf.tensor1d([1000]),
        refGeneratedLogps: tf.tensor1d([0]),
      },
      { alpha: 1, beta: 0 },
    ).metrics();
    // -log sigmoid(-1000) = 1000 in each part (PyTorch gives 1000.0).
    expectClose([big.lossReal, big.lossGenerated], [1000, 1000], 'tails');
  });
});

describe('gsilLoss input checks', () => {
  test('names the missing or misshapen input', () => {
    expect(() =>
      gsilLoss('kliep', { policyRealLogps: tf.tensor1d([1]) }, { alpha: 1, beta: 0 }),
    ).toThrow('kind "kliep" needs inputs.refRealLogps');
    expect(() =>
      gsilLoss(
        'sft',
        { policyRealLogps: tf.tensor1d([1, 2]), realTokenCounts: [3] },
        { alpha: 1, beta: 0 },
      ),
    ).toThrow('inputs.realTokenCounts must have shape [2]');
  });
});
