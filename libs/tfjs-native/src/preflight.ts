import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { exec } from './exec.ts';

/** Thrown when something the build needs is missing; the message names it and the fix. */
export class SetupError extends Error {
  override name = 'SetupError';
}

/** Wheel platform tag fragment for this process's architecture (manylinux wheels only). */
export function wheelArch(arch: string = process.arch): string {
  if (arch === 'x64') return 'x86_64';
  if (arch === 'arm64') return 'aarch64';
  throw new SetupError(
    `architecture ${arch} is not supported: TensorFlow publishes Linux wheels for x86_64 and aarch64 only`,
  );
}

export function checkPlatform(): void {
  if (process.platform !== 'linux') {
    throw new SetupError(
      `platform ${process.platform} is not supported by the wheel build (it links the manylinux .so files); ` +
        'on macOS and Windows use the stock @tensorflow/tfjs-node download instead',
    );
  }
  wheelArch();
}

export interface Toolchain {
  /** Node.js binary that runs node-gyp and the verification (Bun cannot run node-gyp's gyp driver). */
  node: string;
  /** node-gyp's JavaScript entry point. */
  nodeGypJs: string;
  /** Directory with include/node/node_api.h, so node-gyp needs no header download; undefined: download. */
  nodeDir: string | undefined;
  python: string;
}

async function requireTool(command: string, args: string[], what: string, fix: string) {
  const result = await exec(command, args);
  if (result.code !== 0) throw new SetupError(`${what} not found (\`${command}\` failed): ${fix}`);
  return result.stdout.trim() || result.stderr.trim();
}

/** Finds node-gyp: the workspace's copy, then npm's bundled one. */
function findNodeGyp(nodeBinary: string): string | undefined {
  const candidates: string[] = [];
  try {
    const require = createRequire(import.meta.url);
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed in the workspace; fall back to npm's bundled copy
  }
  const prefix = dirname(dirname(nodeBinary));
  candidates.push(join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  return candidates.find((path) => existsSync(path));
}

/** Checks compiler, make, python and node-gyp; throws a SetupError naming the first missing one. */
export async function checkToolchain(): Promise<Toolchain> {
  const python = 'python3';
  await requireTool(python, ['--version'], 'python3', 'install Python 3 (node-gyp needs it too)');
  await requireTool(
    process.env.CXX ?? 'c++',
    ['--version'],
    'a C++ compiler',
    'install g++ (Debian/Ubuntu: apt-get install build-essential)',
  );
  await requireTool(
    'make',
    ['--version'],
    'make',
    'install make (apt-get install build-essential)',
  );

  const which = await exec('sh', ['-c', 'command -v node']);
  const node = which.stdout.trim();
  if (which.code !== 0 || !node) {
    throw new SetupError('node not found on PATH: node-gyp runs under Node.js >= 20, install it');
  }
  const nodeGypJs = findNodeGyp(node);
  if (!nodeGypJs) {
    throw new SetupError(
      'node-gyp not found: `bun add -d node-gyp` or install npm (it bundles node-gyp)',
    );
  }
  // N-API addons are ABI-stable, so any local Node headers will do; this avoids a download.
  const prefix = dirname(dirname(node));
  const nodeDir = existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : undefined;
  return { node, nodeGypJs, nodeDir, python };
}

export async function checkPip(python: string): Promise<void> {
  await requireTool(
    python,
    ['-m', 'pip', '--version'],
    'pip',
    'install pip (python3 -m ensurepip) or pass --wheel <path.whl>',
  );
}
