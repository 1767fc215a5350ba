// `gsil generate`: one completion with ONNX Runtime. Only the completion goes to
// stdout, so the command composes in shell pipelines; logs go to stderr.
import { createSession, Generator } from '@gsil/inference';
import { GsilTokenizer } from '@gsil/tokenizer';
import { modelFiles } from '../local/models.ts';

export interface GenerateOptions {
  model?: string;
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
}

export async function generateCommand(options: GenerateOptions): Promise<void> {
  const files = await modelFiles(options.model);
  const tokenizer = GsilTokenizer.fromFile(files.tokenizer);
  const { session } = await createSession(files.onnx, {
    warn: (message) => process.stderr.write(`${message}\n`),
  });
  const generator = new Generator(session, tokenizer.vocabSize);
  const promptIds = options.prompt ? tokenizer.encodePrompt(options.prompt) : [tokenizer.bosId];
  for await (const completion of generator.generate([{ promptIds }], {
    maxNewTokens: options.maxNewTokens,
    temperature: options.temperature,
    topP: options.topP,
    topK: options.topK,
    seed: options.seed,
    // llama2.c's run.c stops at BOS, which the stories models emit between stories.
    stopTokenIds: [tokenizer.eosId, tokenizer.bosId],
  })) {
    process.stdout.write(`${tokenizer.decode(completion.tokenIds)}\n`);
  }
  await session.release();
}
