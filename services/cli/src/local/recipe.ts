// The recipes `gsil run` knows, as run-config inputs for the trainer. The trainer owns
// the schema (services/trainer/src/run-config.ts) and fills every default; a recipe
// sets only what differs, and flags override both.

export interface RunFlags {
  recipe?: 'mawps' | 'gsm8k';
  quick?: boolean;
  train?: string;
  dev?: string;
  model?: string;
  sftEpochs?: number;
  iterations?: number;
  lr?: number;
  loss?: string;
  alpha?: number;
  beta?: number;
  samplesPerPrompt?: number;
  temperature?: number;
  seed?: number;
  backend?: string;
}

type Json = Record<string, unknown>;

/**
 * The default recipe: SFT of stories260K on MAWPS fold 0 demonstrations, then GSIL.
 * Values chosen by the sweep on fold 0's dev split (README, "Choosing the defaults").
 */
export const MAWPS_RECIPE: Json = {
  baseModel: 'stories260k',
  task: { name: 'mawps' },
  stages: {
    sft: { epochs: 8, learningRate: 3e-3, batchSize: 32 },
    gsil: {
      iterations: 2,
      loss: 'bernoulli',
      alpha: 0.1,
      beta: 0,
      epochsPerIteration: 1,
      samplesPerPrompt: 1,
      sampling: { temperature: 0, maxNewTokens: 40 },
    },
  },
  optimizer: { name: 'adamw', learningRate: 1e-5, batchSize: 16, maxGradNorm: 1 },
  eval: { maxNewTokens: 40 },
};

/** Everything shrunk for a smoke run of a few minutes (CI's end-to-end test). */
const QUICK: Json = {
  task: { trainLimit: 64 },
  stages: {
    sft: { epochs: 1 },
    gsil: { iterations: 1 },
  },
  eval: { limit: 32 },
};

export const GSM8K_RECIPE: Json = {
  baseModel: 'stories260k',
  task: { name: 'gsm8k' },
  stages: {
    sft: { epochs: 1, learningRate: 1e-3, batchSize: 8 },
    gsil: { iterations: 1, loss: 'bernoulli', sampling: { temperature: 0, maxNewTokens: 128 } },
  },
  eval: { maxNewTokens: 128, limit: 200 },
};

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep merge: objects merge key by key, anything else in `over` replaces `base`. */
export function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isObject(value) && isObject(out[key]) ? merge(out[key] as Json, value) : value;
  }
  return out;
}

/** Run-config input from recipe, optional config file, --quick and flags, in that order. */
export function buildRunConfig(flags: RunFlags, fileConfig: Json = {}): Json {
  let config = merge(flags.recipe === 'gsm8k' ? GSM8K_RECIPE : MAWPS_RECIPE, fileConfig);
  if (flags.quick) config = merge(config, QUICK);
  const gsil: Json = {};
  if (flags.iterations !== undefined) gsil.iterations = flags.iterations;
  if (flags.loss !== undefined) gsil.loss = flags.loss;
  if (flags.alpha !== undefined) gsil.alpha = flags.alpha;
  if (flags.beta !== undefined) gsil.beta = flags.beta;
  if (flags.samplesPerPrompt !== undefined) gsil.samplesPerPrompt = flags.samplesPerPrompt;
  if (flags.temperature !== undefined) gsil.sampling = { temperature: flags.temperature };
  const overrides: Json = { stages: { gsil } };
  if (flags.train || flags.dev) {
    overrides.task = {
      ...(flags.train ? { trainFile: flags.train } : {}),
      ...(flags.dev ? { devFile: flags.dev } : {}),
    };
  }
  if (flags.model) overrides.baseModel = flags.model;
  if (flags.lr !== undefined) overrides.optimizer = { learningRate: flags.lr };
  if (flags.sftEpochs !== undefined && flags.sftEpochs > 0) {
    (overrides.stages as Json).sft = { epochs: flags.sftEpochs };
  }
  if (flags.seed !== undefined) overrides.seed = flags.seed;
  if (flags.backend) overrides.backend = flags.backend;
  const merged = merge(config, overrides);
  // --sft-epochs 0: no SFT stage; GSIL starts from the base model (say, an SFT checkpoint).
  if (flags.sftEpochs === 0) delete (merged.stages as Json).sft;
  return merged;
}
