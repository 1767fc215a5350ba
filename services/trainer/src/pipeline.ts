// What a run does, stage by stage: base checkpoint, optional SFT, then K GSIL iterations,
// each ending with a checkpoint, an evaluation and a published version. A run restarted on
// its folder skips every version whose checkpoint is complete: each stage begins from the
// previous checkpoint with a fresh optimizer and seeds derived from (seed, stage,
// iteration), so the resumed run computes exactly what the uninterrupted one would have.

import { createHash } from 'node:crypto';
import type { ModelRef } from '@gsil/contracts';
import { mulberry32, shuffled } from '@gsil/data';
import type { LossKind } from '@gsil/gsil';
import { selectBackend } from '@gsil/model';
import { failedPrecondition } from '@gsil/service-kit';
import { GsilTokenizer } from '@gsil/tokenizer';
import {
  checkpointDir,
  hasCheckpoint,
  type ModelState,
  readCheckpoint,
  writeCheckpoint,
} from './checkpoints.ts';
import type { ModelStore } from './model-store.ts';
import { learningRateAt, type Pair, Policy } from './policy.ts';
import { RatioReplicas, SamplerReplicas } from './remote.ts';
import {
  evaluateDev,
  type RemoteSettings,
  type SampledPrompt,
  sampleAndScore,
} from './remote-phases.ts';
import type { RunContext } from './run-manager.ts';
import { type Demonstration, loadBaseModel, loadDemonstrations } from './task-data.ts';

/** A 32-bit seed for one (stage, iteration, purpose) of a run. */
export function deriveSeed(seed: number, ...parts: Array<string | number>): number {
  const digest = createHash('sha256')
    .update([seed, ...parts].join('/'))
    .digest();
  return digest.readUInt32LE(0);
}

async function timed<T>(
  context: RunContext,
  phase: string,
  stage: string,
  iteration: number,
  body: () => Promise<T> | T,
): Promise<T> {
  const start = performance.now();
  const result = await body();
  const durationMs = performance.now() - start;
  context.emit({ $case: 'phase', value: { phase, stage, iteration, durationMs } });
  context.logger.info({ phase, stage, iteration, durationMs }, `${phase} done`);
  return result;
}

interface TrainState {
  step: number;
}

/**
 * Trains `reference` on `pairs` for `epochs` and returns the new weights. For GSIL losses it
 * first checks that the trainer's own log-probabilities of the reference equal the ratio
 * service's (they come from the exported ONNX graph): a mismatch would silently bias r.
 */
async function trainStage(
  context: RunContext,
  state: TrainState,
  reference: ModelState,
  pairs: Pair[],
  stage: string,
  iteration: number,
  settings: { kind: LossKind; epochs: number; learningRate: number; batchSize: number },
): Promise<ModelState> {
  const stageStart = performance.now();
  const { config } = context;
  const opt = config.optimizer;
  const policy = new Policy(reference.config, reference.weights, {
    ...opt,
    learningRate: settings.learningRate,
  });
  try {
    if (settings.kind !== 'sft') checkReferenceAgreement(policy, pairs, config.logpTolerance);

    const microBatch = settings.batchSize;
    const perStep = microBatch * opt.gradAccumulationSteps;
    const stepsPerEpoch = Math.ceil(pairs.length / perStep);
    const totalSteps = stepsPerEpoch * settings.epochs;
    const loss = { alpha: config.stages.gsil.alpha, beta: config.stages.gsil.beta };
    let stageStep = 0;
    const sums = { loss: 0, rewardsReal: 0, rewardsGenerated: 0, accuracy: 0 };
    for (let epoch = 0; epoch < settings.epochs; epoch++) {
      const rng = mulberry32(deriveSeed(config.seed, stage, iteration, 'shuffle', epoch));
      const order = shuffled(pairs, rng);
      for (let s = 0; s < stepsPerEpoch; s++) {
        context.signal.throwIfAborted();
        const stepPairs = order.slice(s * perStep, (s + 1) * perStep);
        const micro: Pair[][] = [];
        for (let i = 0; i < stepPairs.length; i += microBatch) {
          micro.push(stepPairs.slice(i, i + microBatch));
        }
        const learningRate = learningRateAt(
          { ...opt, learningRate: settings.learningRate },
          stageStep,
          totalSteps,
        );
        const start = performance.now();
        const result = policy.step(settings.kind, micro, loss, learningRate);
        const stepMs = performance.now() - start;
        // A step is synchronous TF.js work: give the event loop a turn so that health
        // checks, WatchRun streams and CancelRun are served during long stages.
        await new Promise((resolve) => setImmediate(resolve));
        stageStep++;
        state.step++;
        sums.loss += result.loss;
        sums.rewardsReal += result.rewardsReal;
        sums.rewardsGenerated += result.rewardsGenerated;
        sums.accuracy += result.accuracy;
        context.emit({
          $case: 'step',
          value: {
            stage,
            iteration,
            step: state.step,
            stageStep,
            stageSteps: totalSteps,
            loss: result.loss,
            lossReal: result.lossReal,
            lossGenerated: result.lossGenerated,
            rewardsReal: result.rewardsReal,
            rewardsGenerated: result.rewardsGenerated,
            rewardsMargin: result.rewardsMargin,
            accuracy: result.accuracy,
            learningRate,
            gradNorm: result.gradNorm,
            tokensPerSecond: result.tokens / (stepMs / 1000),
            stepMs,
          },
        });
        context.logger.info(
          { stage, iteration, step: state.step, loss: result.loss, stepMs },
          'step',
        );
      }
    }
    context.update({ step: state.step });
    const n = Math.max(1, stageStep);
    context.emit({
      $case: 'iteration',
      value: {
        stage,
        iteration,
        steps: stageStep,
        meanLoss: sums.loss / n,
        meanRewardsReal: sums.rewardsReal / n,
        meanRewardsGenerated: sums.rewardsGenerated / n,
        meanAccuracy: sums.accuracy / n,
        // The version this stage's weights are published as.
        model: { name: context.runId, version: stage === 'sft' ? 'sft' : `it${iteration}` },
        durationMs: performance.now() - stageStart,
      },
    });
    return { ...reference, weights: policy.exportWeights() };
  } finally {
    policy.dispose();
  }
}

/** Aborts when the policy (still equal to the reference) disagrees with the ratio service. */
function checkReferenceAgreement(policy: Policy, pairs: Pair[], toleranceNats: number): void {
  const probe = pairs.slice(0, 8);
  if (probe.length === 0) return;
  const ours = policy.sequenceLogps([
    ...probe.map((p) => p.real),
    ...probe.map((p) => p.generated),
  ]);
  const theirs = [...probe.map((p) => p.refRealLogp), ...probe.map((p) => p.refGeneratedLogp)];
  let worst = 0;
  let worstIndex = 0;
  theirs.forEach((ref, i) => {
    const gap = Math.abs(ours[i] - ref);
    if (gap > worst) {
      worst = gap;
      worstIndex = i;
    }
  });
  if (worst > toleranceNats) {
    throw failedPrecondition(
      `the ONNX export and the trainer disagree: sequence ${worstIndex} has log-probability ` +
        `${ours[worstIndex].toFixed(6)} in the trainer but ${theirs[worstIndex].toFixed(6)} from ` +
        `the ratio service (gap ${worst.toExponential(3)} nats > logpTolerance ${toleranceNats})`,
    );
  }
}

export async function executeRun(context: RunContext, store: ModelStore): Promise<void> {
  const { config, runId, runDir } = context;
  const gsil = config.stages.gsil;
  const backend = await selectBackend(config.backend, (line) => context.logger.info(line));
  context.update({ backend });
  const samplers = new SamplerReplicas(config.samplerAddresses);
  const ratios = new RatioReplicas(config.ratioAddresses);
  const state: TrainState = { step: context.initialStep };
  const modelRef = (version: string): ModelRef => ({ name: runId, version });
  const remote = (requestPrefix: string): RemoteSettings => ({
    samplers,
    ratios,
    shardSize: config.shardSize,
    maxShardsInFlight: config.maxShardsInFlight,
    shardAttempts: config.shardAttempts,
    shardRetryDelayMs: config.shardRetryDelayMs,
    requestTimeoutMs: config.requestTimeoutMs,
    signal: context.signal,
    requestPrefix,
    onProgress: (phase, done, total) =>
      context.emit({ $case: 'progress', value: { phase, done, total } }),
  });

  const publish = (version: string, stage: string, iteration: number) =>
    timed(context, 'publish', stage, iteration, async () => {
      await store.publish(modelRef(version), checkpointDir(runDir, version));
      context.update({ latestModel: modelRef(version), stage, iteration });
    });
  const evaluate = async (dev: Demonstration[], version: string, stage: string, k: number) => {
    const metrics = await timed(context, 'eval', stage, k, () =>
      evaluateDev(
        remote(`${runId}-${version}`),
        modelRef(version),
        config.task.name,
        dev,
        config.eval.maxNewTokens,
      ),
    );
    context.emit({
      $case: 'eval',
      value: { stage, iteration: k, model: modelRef(version), metrics, examples: dev.length },
    });
  };

  try {
    // 1. The base model, checkpointed so that a resumed run starts from the same bytes.
    let reference: ModelState = hasCheckpoint(runDir, 'base')
      ? readCheckpoint(runDir, 'base')
      : await timed(context, 'checkpoint', 'base', 0, async () => {
          const base = await loadBaseModel(config.baseModel);
          writeCheckpoint(runDir, 'base', base);
          return base;
        });
    const tokenizer = new GsilTokenizer(reference.tokenizerJson);
    const maxTokens = reference.config.max_position_embeddings - gsil.sampling.maxNewTokens;
    const skipped = (count: number, path: string) =>
      context.logger.warn(
        { count, path, maxTokens },
        'rows left out: the prompt leaves no room for a response in the context',
      );
    const train = await loadDemonstrations(
      config,
      'train',
      tokenizer,
      maxTokens,
      config.task.trainLimit,
      skipped,
    );
    const dev = await loadDemonstrations(
      config,
      'dev',
      tokenizer,
      maxTokens,
      config.eval.limit,
      skipped,
    );
    await publish('base', 'base', 0);

    // 2. Supervised fine-tuning on the demonstrations.
    let refVersion = 'base';
    const sft = config.stages.sft;
    if (sft) {
      if (hasCheckpoint(runDir, 'sft')) {
        reference = readCheckpoint(runDir, 'sft');
      } else {
        context.update({ stage: 'sft', iteration: 0 });
        const pairs: Pair[] = train.map((demo) => ({
          real: demo,
          generated: demo,
          refRealLogp: 0,
          refGeneratedLogp: 0,
        }));
        const trained = await timed(context, 'update', 'sft', 0, () =>
          trainStage(context, state, reference, pairs, 'sft', 0, {
            kind: 'sft',
            epochs: sft.epochs,
            learningRate: sft.learningRate,
            batchSize: sft.batchSize,
          }),
        );
        await timed(context, 'checkpoint', 'sft', 0, () =>
          writeCheckpoint(runDir, 'sft', trained, config.eval.maxNewTokens),
        );
        reference = trained;
      }
      refVersion = 'sft';
      await publish('sft', 'sft', 0);
      await evaluate(dev, 'sft', 'sft', 0);
    } else if (!hasCheckpoint(runDir, 'it1')) {
      // Without an SFT stage the starting point is the base model (often an SFT checkpoint
      // of an earlier run): evaluate it, so GSIL is always compared with where it began.
      await evaluate(dev, 'base', 'base', 0);
    }

    // 3. GSIL iterations: sample with the reference, score, train, checkpoint, publish, eval.
    for (let k = 1; k <= gsil.iterations; k++) {
      const version = `it${k}`;
      if (hasCheckpoint(runDir, version)) {
        reference = readCheckpoint(runDir, version);
        refVersion = version;
        await publish(version, 'gsil', k);
        continue;
      }
      const iterationStart = performance.now();
      context.update({ stage: 'gsil', iteration: k });
      const timings = { sampleMs: 0, scoreMs: 0 };
      const sampled = await sampleAndScore(
        remote(`${runId}-${version}`),
        modelRef(refVersion),
        train,
        {
          ...gsil.sampling,
          numSamples: gsil.samplesPerPrompt,
          seed: deriveSeed(config.seed, 'gsil', k, 'sample'),
        },
        timings,
      );
      context.emit({
        $case: 'phase',
        value: { phase: 'sample', stage: 'gsil', iteration: k, durationMs: timings.sampleMs },
      });
      context.emit({
        $case: 'phase',
        value: { phase: 'score', stage: 'gsil', iteration: k, durationMs: timings.scoreMs },
      });
      const pairs = toPairs(sampled);
      const trained = await timed(context, 'update', 'gsil', k, () =>
        trainStage(context, state, reference, pairs, 'gsil', k, {
          kind: gsil.loss,
          epochs: gsil.epochsPerIteration,
          learningRate: config.optimizer.learningRate,
          batchSize: config.optimizer.batchSize,
        }),
      );
      await timed(context, 'checkpoint', 'gsil', k, () =>
        writeCheckpoint(runDir, version, trained, config.eval.maxNewTokens),
      );
      reference = trained;
      refVersion = version;
      await publish(version, 'gsil', k);
      await evaluate(dev, version, 'gsil', k);
      context.logger.info(
        { iteration: k, durationMs: performance.now() - iterationStart },
        'iteration done',
      );
    }
  } finally {
    samplers.close();
    ratios.close();
  }
}

function toPairs(sampled: readonly SampledPrompt[]): Pair[] {
  const pairs: Pair[] = [];
  for (const s of sampled) {
    s.completions.forEach((completion, j) => {
      pairs.push({
        real: s.demo,
        generated: { promptIds: s.demo.promptIds, responseIds: completion.tokenIds },
        refRealLogp: s.refRealLogp,
        refGeneratedLogp: s.refGeneratedLogps[j],
      });
    });
  }
  return pairs;
}
