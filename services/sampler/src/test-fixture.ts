// Test helpers: a model root holding the real stories260K, converted at test time, and a
// thin promise API over the generated gRPC client.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { assetFile } from '@gsil/assets';
import {
  type Completion,
  GenerateRequest,
  type SamplerInfo,
  SamplerServiceClient,
  SamplingParams,
} from '@gsil/contracts';
import { importLlama2c, saveCheckpoint } from '@gsil/model';
import { exportOnnx } from '@gsil/model/onnx';
import { createLogger } from '@gsil/service-kit';
import { llama2cVocabToTokenizerJson } from '@gsil/tokenizer';
import {
  type RunningSampler,
  type SamplerOptions,
  type StartSamplerExtras,
  startSampler,
} from './main.ts';

const STORIES_BIN = await assetFile('stories260k', 'stories260K.bin');
const TOK512_BIN = await assetFile('stories260k', 'tok512.bin');
/** The folder the resolver found stories260k in; a shared/data copy also holds REFERENCE.md. */
export const DATA_DIR = dirname(STORIES_BIN);

/** Writes <root>/stories260k/base/ (checkpoint files plus model.onnx); returns root. */
export function makeModelRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'gsil-sampler-models-'));
  const dir = join(root, 'stories260k', 'base');
  const { config, weights } = importLlama2c(STORIES_BIN);
  saveCheckpoint(dir, {
    config,
    weights,
    tokenizerJson: llama2cVocabToTokenizerJson(TOK512_BIN),
  });
  writeFileSync(join(dir, 'model.onnx'), exportOnnx(config, weights));
  return root;
}

/**
 * A sampler on a free loopback port over `modelRoot`, on the CPU with one thread, quiet,
 * with its signals left alone; `config` and `options` override.
 */
export function startTestSampler(
  modelRoot: string,
  config: SamplerOptions = {},
  extras: StartSamplerExtras = {},
): Promise<RunningSampler> {
  return startSampler(
    {
      port: 0,
      host: '127.0.0.1',
      metricsPort: 0,
      modelRoot,
      cacheDir: join(modelRoot, '.cache'),
      provider: 'cpu',
      threads: 1,
      maxBatchSize: 8,
      shutdownGraceMs: 200,
      ...config,
    },
    {
      env: {},
      handleSignals: false,
      logger: createLogger('sampler-test', 'silent'),
      ...extras,
    },
  );
}

export type SamplerClient = InstanceType<typeof SamplerServiceClient>;

export function connect(port: number): SamplerClient {
  return new SamplerServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
}

/** Collects a Generate stream; resolves with the completions and the error, if any. */
export function generate(
  client: SamplerClient,
  request: Omit<Partial<GenerateRequest>, 'sampling'> & { sampling?: Partial<SamplingParams> },
  onCompletion?: (completion: Completion) => void,
): Promise<{ completions: Completion[]; error: ServiceError | null }> {
  // ts-proto encodes only complete messages: fill the zero values in.
  const full = GenerateRequest.fromPartial({
    model: { name: 'stories260k', version: 'base' },
    ...request,
    sampling: SamplingParams.fromPartial(request.sampling ?? {}),
  });
  return new Promise((resolve) => {
    const completions: Completion[] = [];
    const stream = client.generate(full);
    stream.on('data', (completion: Completion) => {
      completions.push(completion);
      onCompletion?.(completion);
    });
    stream.on('error', (error: ServiceError) => resolve({ completions, error }));
    stream.on('end', () => resolve({ completions, error: null }));
  });
}

export function getInfo(client: SamplerClient): Promise<SamplerInfo> {
  return new Promise((resolve, reject) =>
    client.getInfo({}, (err, info) => (err ? reject(err) : resolve(info))),
  );
}

export const text = (value: string) => ({ value: { $case: 'text' as const, value } });
export const tokens = (ids: number[]) => ({ value: { $case: 'tokens' as const, value: { ids } } });

/** The value of an unlabelled counter or gauge in a Prometheus text exposition. */
export async function scrapeCounter(metricsPort: number, name: string): Promise<number> {
  const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}
