import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oneNodeGraph } from '@gsil/model/onnx';
import * as ort from 'onnxruntime-node';
import {
  autoProviders,
  createSession,
  cudaProviderInstalled,
  webgpuLoaderPresent,
} from './session.ts';

/** y = x * x over a float vector of length 3. */
const squaringGraph = () => oneNodeGraph('Mul', 3);

async function square(session: ort.InferenceSession): Promise<number[]> {
  const x = new ort.Tensor('float32', Float32Array.from([1.5, -2, 3]), [3]);
  return Array.from((await session.run({ x })).y.data as Float32Array);
}

const savedPath = process.env.LD_LIBRARY_PATH;
const dirs: string[] = [];
afterEach(() => {
  if (savedPath === undefined) delete process.env.LD_LIBRARY_PATH;
  else process.env.LD_LIBRARY_PATH = savedPath;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A folder holding a file named like the Vulkan loader (not a real library). */
function fakeVulkanDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gsil-vulkan-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'libvulkan.so.1'), '');
  return dir;
}

describe('execution providers', () => {
  test("'auto' tries cuda only when installed, webgpu only with a Vulkan loader, cpu last", () => {
    const plain = autoProviders();
    expect(plain.at(-1)).toBe('cpu');
    expect(plain.includes('cuda')).toBe(cudaProviderInstalled());
    expect(plain.includes('webgpu')).toBe(webgpuLoaderPresent());
    if (process.platform !== 'linux') return;
    process.env.LD_LIBRARY_PATH = fakeVulkanDir();
    expect(webgpuLoaderPresent()).toBe(true);
    expect(autoProviders().slice(-2)).toEqual(['webgpu', 'cpu']);
  });

  test("'auto' falls through a provider that cannot start without a warning", async () => {
    // With a loader file that is not a library, WebGPU finds no adapter here (and, on a
    // machine with a GPU, may find one): either way the session runs and nothing warns.
    if (process.platform === 'linux') process.env.LD_LIBRARY_PATH = fakeVulkanDir();
    const warnings: string[] = [];
    const { session, executionProvider } = await createSession(squaringGraph(), {
      executionProvider: 'auto',
      warn: (m) => warnings.push(m),
    });
    expect(await square(session)).toEqual([2.25, 4, 9]);
    expect(autoProviders()).toContain(executionProvider);
    expect(warnings).toEqual([]);
    await session.release();
  });

  test('an explicit provider that fails falls back to cpu with a warning naming why', async () => {
    const warnings: string[] = [];
    const { session, executionProvider } = await createSession(squaringGraph(), {
      executionProvider: 'webgpu',
      warn: (m) => warnings.push(m),
    });
    expect(await square(session)).toEqual([2.25, 4, 9]);
    if (executionProvider === 'webgpu') {
      // A machine with a GPU adapter: the request was honoured, so nothing to warn about.
      expect(warnings).toEqual([]);
    } else {
      expect(executionProvider).toBe('cpu');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^execution provider webgpu is unavailable \(.*adapter.*\); falling back to cpu$/s,
      );
    }
    await session.release();
  });
});
