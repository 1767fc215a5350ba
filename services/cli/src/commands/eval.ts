// `gsil eval`: the trainer's dev evaluation on a saved model, run locally with ONNX
// Runtime: greedy answers, task metrics, and the NLL of the dev demonstrations.
import { availableParallelism } from 'node:os';
import { resolveAsset } from '@gsil/assets';
import { loadDemonstrations, type TaskName } from '@gsil/data';
import { taskMetrics } from '@gsil/eval';
import { scoreResponses } from '@gsil/inference';
import { modelFiles, openModel } from '../local/models.ts';

export interface EvalOptions {
  model: string;
  task: TaskName;
  data?: string;
  limit?: number;
  maxNewTokens?: number;
  json?: boolean;
}

/** The trainer's default eval.maxNewTokens, for models that do not record theirs. */
const DEFAULT_MAX_NEW_TOKENS = 48;

async function devFile(task: TaskName): Promise<string> {
  if (task === 'mawps') return (await resolveAsset('mawps-fold0')).files['dev.csv'];
  return (await resolveAsset('gsm8k')).files['test.jsonl'];
}

export async function evalCommand(options: EvalOptions): Promise<void> {
  const files = await modelFiles(options.model);
  const { tokenizer } = files;
  // Greedy answers for the whole dev set: one decode thread per core.
  const model = await openModel(files.onnx, files.vocab, availableParallelism());
  const maxNewTokens = options.maxNewTokens ?? files.evalMaxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  if (!(Number.isInteger(maxNewTokens) && maxNewTokens > 0 && maxNewTokens < files.contextTokens)) {
    throw new Error(
      `--max-new-tokens must be an integer in [1, ${files.contextTokens - 1}]; got ${maxNewTokens}`,
    );
  }
  if (options.limit !== undefined && !(Number.isInteger(options.limit) && options.limit >= 0)) {
    throw new Error(`--limit must be an integer >= 0 (0 means every row); got ${options.limit}`);
  }
  const dataFile = options.data ?? (await devFile(options.task));
  // Demonstrations are cut to the context less the generation budget, as the trainer does.
  const dev = loadDemonstrations(
    options.task,
    dataFile,
    tokenizer,
    files.contextTokens - maxNewTokens,
    options.limit ?? 0,
  );
  if (dev.length === 0) throw new Error(`${dataFile}: no rows to evaluate`);

  // 1. Greedy answers, exactly as the trainer asks the sampler for them.
  const answers = new Array<string>(dev.length).fill('');
  for await (const completion of model.generator.generate(
    dev.map((d) => ({ promptIds: d.promptIds })),
    {
      maxNewTokens,
      temperature: 0,
      stopTokenIds: [tokenizer.eosId],
    },
  )) {
    answers[completion.requestIndex] = tokenizer.decode(completion.tokenIds);
  }

  // 2. Log-probabilities of the demonstrations, for the dev NLL.
  const scores = await scoreResponses(
    model.session,
    dev.map((d) => ({ promptIds: d.promptIds, responseIds: d.responseIds })),
    { perToken: false },
  );
  const metrics = taskMetrics(
    options.task,
    dev,
    answers,
    scores.map((s) => s.logprob),
    scores.map((s) => s.tokenCount),
  );
  await model.release();

  if (options.json) {
    process.stdout.write(`${JSON.stringify({ examples: dev.length, metrics }, null, 2)}\n`);
  } else {
    process.stdout.write(`examples ${dev.length}\n`);
    for (const [name, value] of Object.entries(metrics)) {
      process.stdout.write(`${name.padEnd(16)} ${value.toFixed(4)}\n`);
    }
  }
}
