// `gsil generate`: one completion with ONNX Runtime. Only the completion goes to
// stdout, so the command composes in shell pipelines; logs go to stderr.
import { modelFiles, openModel } from '../local/models.ts';

export interface GenerateOptions {
  model?: string;
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
}

function check(ok: boolean, flag: string, value: number, accepted: string): void {
  if (!ok) throw new Error(`--${flag} must be ${accepted}; got ${value}`);
}

export async function generateCommand(options: GenerateOptions): Promise<void> {
  check(options.temperature >= 0, 'temperature', options.temperature, '>= 0 (0 is greedy)');
  check(options.topP > 0 && options.topP <= 1, 'top-p', options.topP, 'in (0, 1]');
  check(
    Number.isInteger(options.topK) && options.topK >= 0,
    'top-k',
    options.topK,
    'an integer >= 0',
  );
  check(
    Number.isInteger(options.maxNewTokens) && options.maxNewTokens > 0,
    'max-new-tokens',
    options.maxNewTokens,
    'an integer > 0',
  );

  const files = await modelFiles(options.model);
  const { tokenizer } = files;
  const promptIds = options.prompt ? tokenizer.encodePrompt(options.prompt) : [tokenizer.bosId];
  if (promptIds.length >= files.contextTokens) {
    throw new Error(
      `--prompt is ${promptIds.length} tokens; the model's context is ${files.contextTokens}`,
    );
  }
  // Generation stops at the end of the context whatever --max-new-tokens asks for.
  const maxNewTokens = Math.min(options.maxNewTokens, files.contextTokens - promptIds.length);
  if (maxNewTokens < options.maxNewTokens) {
    process.stderr.write(`gsil: generating ${maxNewTokens} tokens: the context ends there\n`);
  }

  const model = await openModel(files.onnx, files.vocab);
  try {
    for await (const completion of model.generator.generate([{ promptIds }], {
      maxNewTokens,
      temperature: options.temperature,
      topP: options.topP,
      topK: options.topK,
      seed: options.seed,
      // llama2.c's run.c stops at BOS, which the stories models emit between stories.
      stopTokenIds: [tokenizer.eosId, tokenizer.bosId],
    })) {
      // Decoding drops a leading space; decode with the prompt and cut it off, so that
      // prompt + completion reads as the model wrote it ("Once" + " upon a time").
      const prompt = tokenizer.decode(promptIds);
      const text = tokenizer.decode([...promptIds, ...completion.tokenIds]).slice(prompt.length);
      process.stdout.write(`${text}\n`);
    }
  } finally {
    await model.release();
  }
}
