import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import {
  addonPath,
  buildAddon,
  ensurePackage,
  linkDeps,
  TFJS_NODE_VERSION,
  tfjsNodeDir,
  verifyAddon,
} from './binding.ts';
import { checkPip, checkPlatform, checkToolchain, SetupError } from './preflight.ts';
import { checkWheelName, extractWheel, fetchWheel } from './wheel.ts';

export interface SetupOptions {
  /** A TensorFlow wheel already on disk; default: pip downloads tensorflow-cpu (or tensorflow[and-cuda]). */
  wheel?: string;
  /** Build against the CUDA-enabled wheel (tensorflow[and-cuda]); default false. */
  gpu?: boolean;
  /** Extracted libraries and headers; default ~/.cache/gsil/tfjs-native. */
  cacheDir?: string;
  /** Downloaded wheels, shared with other tools; default ~/.cache/gsil/wheels. */
  wheelsDir?: string;
  /** Progress lines for a person at a terminal; default: none. */
  log?: (line: string) => void;
  /** Echo node-gyp's output while it compiles; default false. */
  verbose?: boolean;
}

export interface SetupResult {
  /** The built tfjs_binding.node. */
  addonPath: string;
  /** The wheel the binding was built from. */
  wheel: string;
  /** True when a matching build was already there and only verification ran. */
  alreadyBuilt: boolean;
  /** Wall time of each phase that ran, in milliseconds. */
  timingsMs: Partial<Record<'download' | 'extract' | 'build' | 'verify', number>>;
}

/** Written beside the addon; a matching stamp makes a second setup a no-op. */
interface BuildStamp {
  wheel: string;
  extractedDir: string;
  gpu: boolean;
  tfjsNodeVersion: string;
}

const STAMP_NAME = 'gsil-build.json';

function readStamp(path: string): BuildStamp | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as BuildStamp;
  } catch {
    return undefined;
  }
}

async function timed<T>(
  timings: SetupResult['timingsMs'],
  phase: keyof SetupResult['timingsMs'],
  fn: () => Promise<T>,
) {
  const startMs = performance.now();
  const value = await fn();
  timings[phase] = Math.round(performance.now() - startMs);
  return value;
}

/**
 * Builds tfjs-node's native binding against the libtensorflow inside a TensorFlow Python
 * wheel, in place in node_modules/@tensorflow/tfjs-node, and verifies it with a matmul.
 * Throws a SetupError naming what is missing (compiler, python/pip, wheel, architecture).
 */
export async function setupTfjsNative(options: SetupOptions = {}): Promise<SetupResult> {
  const log = options.log ?? (() => {});
  const gpu = options.gpu ?? false;
  const cacheDir = resolve(options.cacheDir ?? join(homedir(), '.cache/gsil/tfjs-native'));
  const wheelsDir = resolve(options.wheelsDir ?? join(homedir(), '.cache/gsil/wheels'));
  const timingsMs: SetupResult['timingsMs'] = {};

  // 1. Everything the build needs, checked before any download.
  checkPlatform();
  const toolchain = await checkToolchain();
  if (options.wheel) {
    if (!existsSync(options.wheel)) throw new SetupError(`wheel not found: ${options.wheel}`);
    checkWheelName(options.wheel);
  } else {
    await checkPip(toolchain.python);
  }

  // 2. The wheel: given, cached, or downloaded once.
  const wheel = options.wheel
    ? resolve(options.wheel)
    : await timed(timingsMs, 'download', () =>
        fetchWheel({ wheelsDir, gpu, python: toolchain.python, log }),
      );
  const extractedDir = join(cacheDir, basename(wheel, '.whl'));
  const packageDir = tfjsNodeDir();
  const addon = addonPath(packageDir);
  const stampPath = join(dirname(addon), STAMP_NAME);
  const wanted: BuildStamp = { wheel, extractedDir, gpu, tfjsNodeVersion: TFJS_NODE_VERSION };

  // 3. Fast path: same wheel already built here; only re-verify.
  const stamp = readStamp(stampPath);
  const upToDate =
    existsSync(addon) &&
    existsSync(join(extractedDir, 'lib/libtensorflow_cc.so.2')) &&
    JSON.stringify(stamp) === JSON.stringify(wanted);
  if (!upToDate) {
    // 4. Libraries and headers out of the wheel (once per wheel), then the package and its build.
    if (!existsSync(join(extractedDir, 'lib/libtensorflow_cc.so.2'))) {
      await timed(timingsMs, 'extract', () => {
        log(`extracting libtensorflow and headers into ${extractedDir}`);
        return extractWheel(wheel, extractedDir, toolchain.python);
      });
    }
    mkdirSync(cacheDir, { recursive: true });
    await timed(timingsMs, 'build', async () => {
      log(`building tfjs_binding.node in ${packageDir} (node-gyp)`);
      await ensurePackage(packageDir, cacheDir);
      linkDeps(packageDir, extractedDir);
      await buildAddon(packageDir, toolchain, options.verbose);
    });
  }

  // 5. A real computation in a fresh process, under Node and under this runtime if it differs.
  await timed(timingsMs, 'verify', async () => {
    await verifyAddon(packageDir, toolchain.node);
    if (process.execPath !== toolchain.node) await verifyAddon(packageDir, process.execPath);
  });
  if (!upToDate) writeFileSync(stampPath, `${JSON.stringify(wanted, null, 2)}\n`);
  log(`native TF.js backend ready: ${addon}`);
  return { addonPath: addon, wheel, alreadyBuilt: upToDate, timingsMs };
}
