// Creates ONNX Runtime sessions, choosing the execution provider and reporting which one
// actually runs (a CUDA request falls back to the CPU with a warning naming why).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { decodeStepGraph } from '@gsil/model/onnx';
import * as ort from 'onnxruntime-node';

/** Execution providers a session can be asked for; services take one from their config. */
export const EXECUTION_PROVIDERS = ['auto', 'cuda', 'webgpu', 'cpu'] as const;
export type ExecutionProviderChoice = (typeof EXECUTION_PROVIDERS)[number];

/** What each choice does, for the services' --provider help. */
export const EXECUTION_PROVIDER_HELP =
  'ONNX Runtime execution provider: "auto" tries cuda (when its library is installed), ' +
  'then webgpu (when a GPU adapter exists), then cpu; an explicit "cuda" or "webgpu" that ' +
  'fails to load falls back to cpu with a warning';

export interface SessionOptions {
  /**
   * Which provider to use; 'auto' tries CUDA (when its library is installed), then WebGPU
   * (when an adapter may exist, webgpuLoaderPresent), then the CPU. Default 'auto'.
   */
  executionProvider?: ExecutionProviderChoice;
  /** Threads for one operator; 0 lets ONNX Runtime decide. Default 0. */
  intraOpThreads?: number;
  /** Receives the fallback warning; defaults to console.warn. */
  warn?: (message: string) => void;
}

export interface CreatedSession {
  session: ort.InferenceSession;
  /** The provider the session was created with: 'cuda', 'webgpu' or 'cpu'. */
  executionProvider: 'cuda' | 'webgpu' | 'cpu';
}

/**
 * Whether onnxruntime-node's CUDA provider library sits next to its native binding (the
 * optional download puts it there). Without it ONNX Runtime prints an error line of its
 * own before any fallback, so 'auto' checks first and stays silent on CPU-only machines.
 */
export function cudaProviderInstalled(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const root = dirname(dirname(require.resolve('onnxruntime-node')));
    const binDir = join(root, 'bin', 'napi-v6', process.platform, process.arch);
    const file =
      process.platform === 'win32'
        ? 'onnxruntime_providers_cuda.dll'
        : 'libonnxruntime_providers_cuda.so';
    return existsSync(join(binDir, file));
  } catch {
    return false;
  }
}

/**
 * Whether a WebGPU adapter can exist on this machine at all. ONNX Runtime's WebGPU provider
 * (Dawn) reaches the GPU through Metal on macOS and D3D12 on Windows, which are always there,
 * and through Vulkan on Linux: without the Vulkan loader there is no adapter, and asking for
 * one only prints Dawn's own warning. Whether an adapter really exists shows when a session
 * is created on it.
 */
export function webgpuLoaderPresent(): boolean {
  if (process.platform !== 'linux')
    return process.platform === 'darwin' || process.platform === 'win32';
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
    '/lib64',
  ];
  return dirs.some((dir) => existsSync(join(dir, 'libvulkan.so.1')));
}

/**
 * The providers 'auto' tries, best first: CUDA when its provider library is installed, WebGPU
 * when an adapter may exist, then the CPU.
 */
export function autoProviders(): Array<'cuda' | 'webgpu' | 'cpu'> {
  return [
    ...(cudaProviderInstalled() ? (['cuda'] as const) : []),
    ...(webgpuLoaderPresent() ? (['webgpu'] as const) : []),
    'cpu',
  ];
}

export async function createSession(
  onnxPathOrBytes: string | Uint8Array,
  options: SessionOptions = {},
): Promise<CreatedSession> {
  const choice = options.executionProvider ?? 'auto';
  const warn = options.warn ?? ((message: string) => console.warn(message));
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: options.intraOpThreads ?? 0,
    // Decode steps change shapes every call; the arena only grows memory here.
    enableCpuMemArena: true,
    // Attention weights underflow into float32 denormals (stories260K's softmax outputs
    // have some), which x86 multiplies through a slow microcode path; flushing values
    // below 1.2e-38 to zero made a batch-32 decode step about 8% faster.
    extra: { session: { set_denormal_as_zero: '1' } },
  };
  const create = (provider: string) =>
    typeof onnxPathOrBytes === 'string'
      ? ort.InferenceSession.create(onnxPathOrBytes, { ...base, executionProviders: [provider] })
      : ort.InferenceSession.create(onnxPathOrBytes, { ...base, executionProviders: [provider] });

  // 'auto' falls through its list silently (no GPU is the normal case on many machines); an
  // explicit accelerator that fails falls back to the CPU with a warning naming why.
  const accelerators = (choice === 'auto' ? autoProviders() : [choice]).filter((p) => p !== 'cpu');
  for (const provider of accelerators) {
    try {
      return { session: await create(provider), executionProvider: provider };
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      if (choice !== 'auto') {
        warn(`execution provider ${provider} is unavailable (${why}); falling back to cpu`);
      }
    }
  }
  return { session: await create('cpu'), executionProvider: 'cpu' };
}

/**
 * A session on the decode-step graph derived from `onnxPathOrBytes` (decodeStepGraph) for
 * Generator's fast path, on the provider the main session got; undefined when the graph
 * was not written by our exporter, whose metadata says so.
 */
export async function createDecodeSession(
  onnxPathOrBytes: string | Uint8Array,
  options: SessionOptions & { executionProvider: 'cuda' | 'webgpu' | 'cpu' },
): Promise<ort.InferenceSession | undefined> {
  const bytes =
    typeof onnxPathOrBytes === 'string' ? await readFile(onnxPathOrBytes) : onnxPathOrBytes;
  const graph = decodeStepGraph(bytes);
  if (!graph) return undefined;
  return (await createSession(graph, options)).session;
}
