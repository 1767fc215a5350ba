import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { exec, tail } from './exec.ts';
import { SetupError, type Toolchain } from './preflight.ts';

export const TFJS_NODE_VERSION = '4.22.0';
/** Highest N-API version tfjs-node 4.22 lists; node-pre-gyp's lookup then picks lib/napi-v8. */
const NAPI_BUILD_VERSION = 8;

/**
 * Where tfjs-node must sit so that import('@tensorflow/tfjs-node') resolves and shares the
 * workspace's @tensorflow/tfjs (one engine, one backend registry): beside that package.
 */
export function tfjsNodeDir(): string {
  const require = createRequire(import.meta.url);
  const tfjsPackageJson = require.resolve('@tensorflow/tfjs/package.json');
  return join(dirname(dirname(tfjsPackageJson)), 'tfjs-node');
}

export function addonPath(packageDir: string): string {
  return join(packageDir, `lib/napi-v${NAPI_BUILD_VERSION}/tfjs_binding.node`);
}

/**
 * Makes sure the tfjs-node package files are present. They are usually absent: it is an
 * optional dependency whose install script (a libtensorflow download) fails offline, and Bun
 * then deletes it. Its dependencies stay installed, so unpacking the npm tarball suffices.
 */
export async function ensurePackage(packageDir: string, cacheDir: string): Promise<void> {
  if (existsSync(join(packageDir, 'binding.gyp'))) return;
  const tarball = join(cacheDir, `tensorflow-tfjs-node-${TFJS_NODE_VERSION}.tgz`);
  if (!existsSync(tarball)) {
    const spec = `@tensorflow/tfjs-node@${TFJS_NODE_VERSION}`;
    const packed = await exec('npm', ['pack', spec, '--pack-destination', cacheDir]);
    if (packed.code !== 0 || !existsSync(tarball)) {
      throw new SetupError(`could not fetch ${spec} with npm pack:\n${tail(packed.stderr)}`);
    }
  }
  const unpackDir = `${packageDir}.unpack`;
  rmSync(unpackDir, { recursive: true, force: true });
  mkdirSync(unpackDir, { recursive: true });
  const untar = await exec('tar', ['xzf', tarball, '-C', unpackDir]);
  if (untar.code !== 0) throw new SetupError(`could not unpack ${tarball}:\n${tail(untar.stderr)}`);
  rmSync(packageDir, { recursive: true, force: true });
  renameSync(join(unpackDir, 'package'), packageDir);
  rmSync(unpackDir, { recursive: true, force: true });
}

/**
 * Points deps/ at the extracted wheel: the binding links -ltensorflow and -ltensorflow_framework
 * and, at run time, loads the sonames libtensorflow_cc.so.2 and libtensorflow_framework.so.2
 * through its rpath $ORIGIN/../../deps/lib.
 */
export function linkDeps(packageDir: string, extractedDir: string): void {
  const depsDir = join(packageDir, 'deps');
  rmSync(depsDir, { recursive: true, force: true });
  mkdirSync(join(depsDir, 'lib'), { recursive: true });
  symlinkSync(join(extractedDir, 'include'), join(depsDir, 'include'));
  const libDir = join(extractedDir, 'lib');
  const links: Record<string, string> = {
    'libtensorflow.so': 'libtensorflow_cc.so.2',
    'libtensorflow_framework.so': 'libtensorflow_framework.so.2',
  };
  for (const name of readdirSync(libDir)) links[name] = name;
  for (const [link, target] of Object.entries(links)) {
    symlinkSync(join(libDir, target), join(depsDir, 'lib', link));
  }
}

/** Compiles binding/*.cc with node-gyp; module_* come from pre-built metadata normally. */
export async function buildAddon(packageDir: string, toolchain: Toolchain, echo = false) {
  const args = [
    toolchain.nodeGypJs,
    'rebuild',
    '--module_name=tfjs_binding',
    `--module_path=${dirname(addonPath(packageDir))}`,
    `--napi_build_version=${NAPI_BUILD_VERSION}`,
    `--python=${toolchain.python}`,
  ];
  if (toolchain.nodeDir) args.push(`--nodedir=${toolchain.nodeDir}`);
  const result = await exec(toolchain.node, args, { cwd: packageDir, echo });
  if (result.code !== 0 || !existsSync(addonPath(packageDir))) {
    throw new SetupError(`node-gyp failed to build the binding:\n${tail(result.stderr, 30)}`);
  }
}

const VERIFY_JS = `
const tf = require(process.argv[1]);
const product = tf.matMul([[1, 2], [3, 4]], [[5], [6]]).dataSync();
console.log(JSON.stringify({ backend: tf.getBackend(), product: Array.from(product) }));
`;

/** Loads the package in a fresh runtime and checks [[1,2],[3,4]]·[[5],[6]] = [17,39] natively. */
export async function verifyAddon(packageDir: string, runtime: string): Promise<void> {
  const env = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' };
  const result = await exec(runtime, ['-e', VERIFY_JS, packageDir], { env });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  let parsed: { backend?: string; product?: number[] } = {};
  try {
    parsed = JSON.parse(line);
  } catch {
    // reported below with the runtime's own output
  }
  if (parsed.backend !== 'tensorflow' || parsed.product?.join(',') !== '17,39') {
    throw new SetupError(
      `verification under ${runtime} failed (expected backend tensorflow, product 17,39):\n` +
        tail(`${result.stdout}\n${result.stderr}`),
    );
  }
}
