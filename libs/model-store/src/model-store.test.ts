import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, type ServerWritableStream } from '@grpc/grpc-js';
import {
  type ExportModelRequest,
  type FileChunk,
  type ModelRef,
  TrainerServiceClient,
  TrainerServiceService,
} from '@gsil/contracts';
import {
  createLogger,
  GsilError,
  type RunningServer,
  Status,
  startServer,
} from '@gsil/service-kit';
import { ModelCache } from './cache.js';
import { exportModelHandler, streamModelDir } from './export.js';
import {
  DirectoryModelFetcher,
  GrpcModelFetcher,
  pullModelDir,
  writeChecksums,
} from './fetchers.js';
import { listFilesRecursive } from './layout.js';

const logger = createLogger('test', 'silent');
const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gsil-store-'));
  temps.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

// Expected digests computed independently with Python's hashlib.
const ONNX_BYTES = 5 * (1 << 19); // 2.5 MiB: two full 1 MiB chunks and a half one
const ONNX_SHA256 = '35aeff7e048974ee23c365c8faf6bcb868ca0529c69309a00f6cde98bfbf89ce';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function publish(root: string, name: string, version: string): void {
  const dir = join(root, name, version);
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), '{"model_type":"llama"}');
  writeFileSync(
    join(dir, 'model.onnx'),
    Uint8Array.from({ length: ONNX_BYTES }, (_, i) => i % 251),
  );
  writeFileSync(join(dir, 'sub', 'empty.txt'), '');
}

/** A real TrainerService with only ExportModel; `corrupt` sends a wrong sha256 for one file. */
async function startTrainer(storeRoot: string, corrupt = false) {
  let exportCalls = 0;
  const handler = exportModelHandler(storeRoot);
  const running = await startServer({
    name: 'trainer-test',
    port: 0,
    host: '127.0.0.1',
    logger,
    handleSignals: false,
    services: [
      {
        definition: TrainerServiceService,
        implementation: {
          exportModel: async (call: ServerWritableStream<ExportModelRequest, FileChunk>) => {
            exportCalls++;
            if (!corrupt) return handler(call);
            const write = call.write.bind(call);
            call.write = ((chunk: FileChunk) =>
              write({
                ...chunk,
                sha256: chunk.path === 'model.onnx' ? EMPTY_SHA256 : chunk.sha256,
              })) as typeof call.write;
            return handler(call);
          },
        },
      },
    ],
  });
  return { running, calls: () => exportCalls };
}

describe('model store over gRPC', () => {
  const storeRoot = tempDir();
  let trainer: { running: RunningServer; calls: () => number };
  beforeAll(async () => {
    publish(storeRoot, 'tiny', 'v1');
    publish(storeRoot, 'tiny', 'v2');
    trainer = await startTrainer(storeRoot);
  });
  afterAll(async () => {
    await trainer.running.shutdown(100);
  });

  test('ExportModel streams files in order, in 1 MiB chunks, with each file sha256', async () => {
    const client = new TrainerServiceClient(trainer.running.address, credentials.createInsecure());
    const chunks: FileChunk[] = [];
    for await (const chunk of client.exportModel({ model: { name: 'tiny', version: 'v1' } })) {
      chunks.push(chunk as FileChunk);
    }
    client.close();
    expect(chunks.map((c) => [c.path, c.offset, c.data.length, c.totalSize])).toEqual([
      ['config.json', 0, 22, 22],
      ['model.onnx', 0, 1 << 20, ONNX_BYTES],
      ['model.onnx', 1 << 20, 1 << 20, ONNX_BYTES],
      ['model.onnx', 2 << 20, 1 << 19, ONNX_BYTES],
      ['sub/empty.txt', 0, 0, 0],
    ]);
    expect(chunks[1].sha256).toBe(ONNX_SHA256);
    expect(chunks[4].sha256).toBe(EMPTY_SHA256);
  });

  test('concurrent requests share one pull; loaded versions are reused; LRU evicts', async () => {
    const root = tempDir();
    const loads: string[] = [];
    const unloads: string[] = [];
    const fetcher = new GrpcModelFetcher(trainer.running.address);
    const cache = new ModelCache({
      root,
      maxResident: 1,
      fetchers: [fetcher],
      load: async (dir: string, ref: ModelRef) => {
        loads.push(ref.version);
        return { dir, files: await listFilesRecursive(dir) };
      },
      unload: (_model, ref) => {
        unloads.push(ref.version);
      },
    });
    const before = trainer.calls();
    const ref = { name: 'tiny', version: 'v1' };
    const models = await Promise.all([1, 2, 3, 4].map(() => cache.get(ref)));
    expect(trainer.calls() - before).toBe(1);
    expect(cache.pulls).toBe(1);
    expect(new Set(models).size).toBe(1);
    expect(models[0]).toEqual({
      dir: join(root, 'tiny', 'v1'),
      files: ['config.json', 'model.onnx', 'sub/empty.txt'],
    });
    expect(await cache.get(ref)).toBe(models[0]);

    await cache.get({ name: 'tiny', version: 'v2' });
    expect(loads).toEqual(['v1', 'v2']);
    expect(unloads).toEqual(['v1']);
    expect(cache.residentRefs()).toEqual([{ name: 'tiny', version: 'v2' }]);
    // v1 is on disk already: loading it again needs no pull.
    await cache.get(ref);
    expect(cache.pulls).toBe(2);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
    fetcher.close();
  });

  test('an unknown version is NOT_FOUND; a bad ref is INVALID_ARGUMENT', async () => {
    const fetcher = new GrpcModelFetcher(trainer.running.address);
    const cache = new ModelCache({
      root: tempDir(),
      maxResident: 2,
      fetchers: [fetcher],
      load: async (d) => d,
    });
    const err = await cache.get({ name: 'tiny', version: 'v9' }).catch((e) => e);
    expect(err).toBeInstanceOf(GsilError);
    expect(err.code).toBe(Status.NOT_FOUND);
    expect(err.message).toContain(`model tiny@v9 is not published in ${storeRoot}`);
    const bad = await cache.get({ name: '..', version: 'v1' }).catch((e) => e);
    expect(bad.code).toBe(Status.INVALID_ARGUMENT);
    fetcher.close();
  });

  test('a sha256 mismatch is UNAVAILABLE and leaves nothing half-written', async () => {
    const bad = await startTrainer(storeRoot, true);
    const root = tempDir();
    const fetcher = new GrpcModelFetcher(bad.running.address);
    const cache = new ModelCache({
      root,
      maxResident: 2,
      fetchers: [fetcher],
      load: async (d) => d,
    });
    const err = await cache.get({ name: 'tiny', version: 'v1' }).catch((e) => e);
    expect(err.code).toBe(Status.UNAVAILABLE);
    expect(err.message).toContain(
      `model.onnx: sha256 mismatch: expected ${EMPTY_SHA256}, got ${ONNX_SHA256}`,
    );
    expect(existsSync(join(root, 'tiny', 'v1'))).toBe(false);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
    fetcher.close();
    await bad.running.shutdown(100);
  });

  test('falls back to a directory store when the trainer lacks the version', async () => {
    const volume = tempDir();
    publish(volume, 'tiny', 'v3');
    await writeChecksums(join(volume, 'tiny', 'v3'));
    const fetcher = new GrpcModelFetcher(trainer.running.address);
    const root = tempDir();
    const cache = new ModelCache({
      root,
      maxResident: 2,
      fetchers: [fetcher, new DirectoryModelFetcher(volume)],
      load: async (dir) => listFilesRecursive(dir),
    });
    expect(await cache.get({ name: 'tiny', version: 'v3' })).toEqual([
      'SHA256SUMS',
      'config.json',
      'model.onnx',
      'sub/empty.txt',
    ]);
    fetcher.close();

    // A corrupted file on the volume is refused.
    writeFileSync(join(volume, 'tiny', 'v3', 'config.json'), '{}');
    const strict = new ModelCache({
      root: tempDir(),
      maxResident: 1,
      fetchers: [new DirectoryModelFetcher(volume)],
      load: async (d) => d,
    });
    const err = await strict.get({ name: 'tiny', version: 'v3' }).catch((e) => e);
    expect(err.code).toBe(Status.UNAVAILABLE);
    expect(err.message).toContain('config.json: sha256 mismatch: expected fd11fd11');
  });

  test('pullModelDir downloads one version into a new folder, verified', async () => {
    const dest = join(tempDir(), 'run', 'model');
    await pullModelDir(trainer.running.address, { name: 'tiny', version: 'v2' }, dest);
    expect(await listFilesRecursive(dest)).toEqual(['config.json', 'model.onnx', 'sub/empty.txt']);
    expect(readdirSync(join(dest, '..'))).toEqual(['model']);
  });

  test('an unreachable trainer is UNAVAILABLE', async () => {
    const fetcher = new GrpcModelFetcher('127.0.0.1:1', 2000);
    const cache = new ModelCache({
      root: tempDir(),
      maxResident: 1,
      fetchers: [fetcher],
      load: async (d) => d,
    });
    const err = await cache.get({ name: 'tiny', version: 'v1' }).catch((e) => e);
    expect(err.code).toBe(Status.UNAVAILABLE);
    expect(err.message).toStartWith('model tiny@v1 could not be pulled (trainer 127.0.0.1:1: ');
    fetcher.close();
  });
});

test('streamModelDir writes nothing after the client cancels', async () => {
  const dir = tempDir();
  publish(dir, 'm', 'v');
  const written: FileChunk[] = [];
  const sink = {
    cancelled: false,
    write(chunk: FileChunk) {
      written.push(chunk);
      if (written.length === 2) sink.cancelled = true;
      return true;
    },
    once: () => sink,
  };
  await streamModelDir(join(dir, 'm', 'v'), sink as never);
  expect(written.map((c) => c.path)).toEqual(['config.json', 'model.onnx']);
});
