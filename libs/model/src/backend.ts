// Chooses the TensorFlow.js backend. The native backend (@tensorflow/tfjs-node or
// tfjs-node-gpu) is optional: it is not installable everywhere, so it is loaded only if
// present, and 'auto' falls back to WASM and then to plain JavaScript.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu' | 'webgpu';

const require = createRequire(import.meta.url);

async function loadNative(): Promise<void> {
  // Importing registers the 'tensorflow' backend; the GPU build registers the same name.
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require(pkg);
      return;
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw cause;
    }
  }
  // The package may be installed without its binding (offline installs drop the download).
  throw new Error(
    'no native TF.js binding loads (build one with `gsil setup tfjs-native`, or install ' +
      '@tensorflow/tfjs-node with internet)',
  );
}

async function loadWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // Point the loader at the package's own .wasm files: under Bun and bundlers the default
  // lookup relative to the script fails.
  const dist = dirname(
    require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'),
  );
  wasm.setWasmPaths(`${join(dist, '/')}`);
}

async function trySet(name: Exclude<BackendName, 'auto'>): Promise<void> {
  if (name === 'tensorflow') await loadNative();
  else if (name === 'wasm') await loadWasm();
  else if (name === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu' as string);
  if (!(await tf.setBackend(name)))
    throw new Error(`TensorFlow.js backend ${name} failed to start`);
  await tf.ready();
}

/**
 * Activates the named backend, or for 'auto' the first that starts of tensorflow, wasm
 * and cpu. Returns the backend's name; `log` receives one line saying which was taken.
 */
export async function selectBackend(
  name: BackendName,
  log: (line: string) => void = (line) => console.error(line),
): Promise<string> {
  if (name !== 'auto') {
    await trySet(name);
    log(`tfjs backend: ${tf.getBackend()}`);
    return tf.getBackend();
  }
  const skipped: string[] = [];
  for (const candidate of ['tensorflow', 'wasm', 'cpu'] as const) {
    try {
      await trySet(candidate);
      const why = skipped.length ? ` (skipped: ${skipped.join('; ')})` : '';
      log(`tfjs backend: ${tf.getBackend()}${why}`);
      return tf.getBackend();
    } catch (cause) {
      skipped.push(`${candidate}: ${(cause as Error).message}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could start: ${skipped.join('; ')}`);
}
