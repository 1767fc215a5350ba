// `gsil generate`: one completion with ONNX Runtime. Only the completion goes to
// stdout, so the command composes in shell pipelines; logs go to stderr.
import { GsilTokenizer } from '@gsil/tokenizer';
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

export async function generateCommand(options: GenerateOptions): Promise<void> {
  const files = await modelFiles(options.model);
  const tokenizer = GsilTokenizer.fromFile(files.tokenizer);
  const model = await openModel(files.onnx, tokenizer.vocabSize);
  const promptIds = options.prompt ? tokenizer.encodePrompt(options.prompt) : [tokenizer.bosId];
  for await (const completion of model.generator.generate([{ promptIds }], {
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
  await model.release();
}
