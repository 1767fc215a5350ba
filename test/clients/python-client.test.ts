// Another language against the same contracts: Python stubs generated from proto/ with
// grpc_tools talk to `gsil serve ratio` and `gsil serve sampler`, and must observe what
// the TypeScript clients observe. Skipped, with the reason printed, where Python lacks
// grpcio and grpcio-tools (the rest of the suite never needs Python).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import {
  type Completion,
  type LogProbsRequest,
  type LogProbsResponse,
  RatioServiceClient,
  SamplerServiceClient,
} from '@gsil/contracts';
import {
  killAll,
  REPO_ROOT,
  runCli,
  type ServiceProcess,
  startService,
  stopService,
} from '../support/processes.ts';
import { findPython } from '../support/python.ts';

const PROMPT = 'Once upon a time';
const RESPONSE = 'there was a little girl';
/** sentencepiece (tok512.model) encodes RESPONSE as these 7 pieces; EOS (2) ends a response. */
const RESPONSE_TOKEN_IDS = [383, 286, 261, 376, 298, 315, 421, 2];
/** llama2.c's published greedy sample from BOS (its doc/stories260K.md; REFERENCE.md). */
const PUBLISHED_CONTINUATION = ', there was a little girl named Lily. She loved to play outside';
const MODEL = { name: 'stories260k', version: 'base' };

interface PythonObservation {
  logprob: number;
  token_count: number;
  token_logprobs: number[];
  bad_request_code: string;
  bad_request_message?: string;
  completion_text: string;
  completion_token_ids: number[];
  finish_reason: string;
}

// nx puts its runtime's folder, often /usr/bin, ahead of pyenv shims on PATH.
const { python, missing: skipReason } = findPython(['grpc', 'grpc_tools'], 'GSIL_TEST_PYTHON');
if (skipReason) console.log(`skipping the Python client test: ${skipReason}`);

const scratch = mkdtempSync(join(tmpdir(), 'gsil-python-client-'));
let ratio: ServiceProcess;
let sampler: ServiceProcess;
let observed: PythonObservation;

function tsLogProbs(request: LogProbsRequest): Promise<LogProbsResponse> {
  const client = new RatioServiceClient(ratio.address, credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.logProbs(request, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response);
    }),
  );
}

async function tsGreedy(prompt: string, maxNewTokens: number): Promise<Completion[]> {
  const client = new SamplerServiceClient(sampler.address, credentials.createInsecure());
  const completions: Completion[] = [];
  const stream = client.generate({
    requestId: 'ts-greedy',
    model: MODEL,
    prompts: [{ value: { $case: 'text', value: prompt } }],
    sampling: {
      temperature: 0,
      topP: 0,
      topK: 0,
      maxNewTokens,
      numSamples: 0,
      seed: 0,
      stopTokenIds: [],
    },
  });
  for await (const completion of stream) completions.push(completion as Completion);
  client.close();
  return completions;
}

describe.skipIf(skipReason !== '')('Python gRPC client', () => {
  beforeAll(async () => {
    // 1. Stubs from proto/, as any Python user would generate them.
    const stubsDir = join(scratch, 'stubs');
    mkdirSync(stubsDir);
    const protos = readdirSync(join(REPO_ROOT, 'proto/gsil/v1')).map((f) => `gsil/v1/${f}`);
    const protoc = spawnSync(
      python,
      ['-m', 'grpc_tools.protoc', '-I', 'proto', `--python_out=${stubsDir}`].concat([
        `--grpc_python_out=${stubsDir}`,
        ...protos,
      ]),
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    if (protoc.status !== 0) throw new Error(`grpc_tools.protoc failed:\n${protoc.stderr}`);

    // 2. A model root with stories260K, converted by the CLI, served by both services.
    const modelRoot = join(scratch, 'models');
    const convert = await runCli([
      'convert',
      'llama2c',
      '--out',
      join(modelRoot, MODEL.name, MODEL.version),
      '--onnx',
    ]);
    if (convert.code !== 0) throw new Error(`gsil convert failed:\n${convert.stderr}`);
    const root = ['--model-root', modelRoot];
    [ratio, sampler] = await Promise.all([
      startService('ratio', root, { scratchDir: scratch }),
      startService('sampler', root, {
        scratchDir: scratch,
        env: { GSIL_SAMPLER_CACHE_DIR: join(scratch, 'sampler-cache') },
      }),
    ]);

    // 3. The Python client, run once; each test checks part of what it saw.
    const client = spawnSync(
      python,
      [
        join(REPO_ROOT, 'test/clients/python/ratio_client.py'),
        stubsDir,
        ratio.address,
        sampler.address,
        MODEL.name,
        MODEL.version,
      ],
      { encoding: 'utf8', timeout: 180_000 },
    );
    if (client.status !== 0) throw new Error(`ratio_client.py failed:\n${client.stderr}`);
    observed = JSON.parse(client.stdout);
  }, 300_000);

  afterAll(async () => {
    await Promise.all([ratio, sampler].filter(Boolean).map((s) => stopService(s)));
    killAll();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('LogProbs agrees with the TypeScript client', async () => {
    const response = await tsLogProbs({
      requestId: 'ts-1',
      model: MODEL,
      pairs: [
        {
          prompt: { value: { $case: 'text', value: PROMPT } },
          response: { value: { $case: 'text', value: RESPONSE } },
        },
      ],
      perToken: true,
    });
    const expected = response.results[0];
    expect(observed.token_count).toBe(RESPONSE_TOKEN_IDS.length);
    expect(expected.tokenCount).toBe(RESPONSE_TOKEN_IDS.length);
    expect(Math.abs(observed.logprob - expected.logprob)).toBeLessThan(1e-6);
    expect(observed.logprob).toBeLessThan(0);
    expect(observed.token_logprobs.length).toBe(RESPONSE_TOKEN_IDS.length);
    const perTokenSum = observed.token_logprobs.reduce((a, b) => a + b, 0);
    expect(Math.abs(perTokenSum - observed.logprob)).toBeLessThan(1e-4);
  });

  test('a bad pair is INVALID_ARGUMENT naming the pair', () => {
    expect(observed.bad_request_code).toBe('INVALID_ARGUMENT');
    expect(observed.bad_request_message).toContain('pairs[1]');
  });

  test('Generate agrees with the TypeScript client and the published greedy sample', async () => {
    const [expected] = await tsGreedy(PROMPT, 16);
    expect(observed.completion_token_ids).toEqual(expected.tokenIds);
    expect(observed.completion_text).toBe(expected.text);
    expect(observed.completion_token_ids.length).toBe(16);
    expect(observed.finish_reason).toBe('FINISH_REASON_LENGTH');
    // 16 greedy tokens after "Once upon a time" continue llama2.c's own greedy story.
    expect(PUBLISHED_CONTINUATION.startsWith(observed.completion_text)).toBe(true);
  });
});
