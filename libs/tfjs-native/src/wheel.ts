import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { exec, tail } from './exec.ts';
import { SetupError, wheelArch } from './preflight.ts';

/**
 * TensorFlow release whose C API matches tfjs-node 4.22's binding (measured: 2.21.0
 * builds and runs).
 */
export const TENSORFLOW_VERSION = '2.21.0';

/**
 * Header trees the binding's includes reach (tensorflow/c/c_api.h and eager/c_api.h pull in
 * tsl/platform/ctstring*.h and xla/tsl/c/tsl_status.h); ~6 MB instead of the wheel's 268 MB.
 */
const HEADER_PREFIXES = [
  'tensorflow/include/tensorflow/c/',
  'tensorflow/include/tensorflow/core/platform/',
  'tensorflow/include/tsl/',
  'tensorflow/include/xla/tsl/',
];
const LIBRARIES = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'];

function wheelPattern(gpu: boolean): RegExp {
  const name = gpu ? 'tensorflow' : 'tensorflow_cpu';
  return new RegExp(
    `^${name}-${TENSORFLOW_VERSION.replaceAll('.', '\\.')}-.*linux.*_${wheelArch()}\\.whl$`,
  );
}

/** Throws unless the wheel's platform tag is Linux on this machine's architecture. */
export function checkWheelName(wheelPath: string): void {
  const name = basename(wheelPath);
  if (!name.endsWith('.whl') || !name.startsWith('tensorflow')) {
    throw new SetupError(
      `${wheelPath} is not a TensorFlow wheel (expected tensorflow*-<ver>-...whl)`,
    );
  }
  if (!name.includes('linux') || !name.endsWith(`_${wheelArch()}.whl`)) {
    throw new SetupError(
      `wheel ${name} is for another platform; this machine needs a linux ${wheelArch()} wheel`,
    );
  }
}

/**
 * Returns the TensorFlow wheel, downloading it with pip into wheelsDir unless one is there.
 * CPU: tensorflow-cpu, no dependencies. GPU: tensorflow[and-cuda] with dependencies, since
 * the CUDA runtime libraries come as nvidia-* wheels.
 */
export async function fetchWheel(options: {
  wheelsDir: string;
  gpu: boolean;
  python: string;
  log: (line: string) => void;
}): Promise<string> {
  const dir = options.gpu ? join(options.wheelsDir, 'gpu') : options.wheelsDir;
  const pattern = wheelPattern(options.gpu);
  const cached = existsSync(dir) ? readdirSync(dir).find((name) => pattern.test(name)) : undefined;
  if (cached) return join(dir, cached);

  mkdirSync(dir, { recursive: true });
  options.log(`downloading the TensorFlow wheel into ${dir} with pip (~274 MB for tensorflow-cpu)`);
  const spec = options.gpu
    ? [`tensorflow[and-cuda]==${TENSORFLOW_VERSION}`]
    : ['--no-deps', `tensorflow-cpu==${TENSORFLOW_VERSION}`];
  const result = await exec(options.python, ['-m', 'pip', 'download', ...spec, '-d', dir]);
  const downloaded = readdirSync(dir).find((name) => pattern.test(name));
  if (result.code !== 0 || !downloaded) {
    throw new SetupError(
      `could not download ${spec.at(-1)} with pip (exit ${result.code}); ` +
        `pass --wheel <path.whl> if you have it:\n${tail(result.stderr || result.stdout)}`,
    );
  }
  return join(dir, downloaded);
}

// Extracts by prefix and flattens libraries into lib/; stdlib zipfile streams, so memory
// stays small.
const EXTRACT_PY = `
import sys, zipfile, os, shutil
wheel, dest, prefixes, libs = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split(",")
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if name.endswith("/"):
            continue
        base = os.path.basename(name)
        if name.startswith("tensorflow/") and base in libs or (name.startswith("nvidia/") and "/lib/" in name and ".so" in base):
            target = os.path.join(dest, "lib", base)
        elif any(name.startswith(p) for p in prefixes):
            target = os.path.join(dest, "include", name[len("tensorflow/include/"):])
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
`;

/**
 * Extracts the two TensorFlow libraries and the needed headers into destDir/{lib,include}
 * (atomically: a half-extracted cache never looks complete). For GPU wheels, the CUDA
 * libraries of the nvidia-* wheels beside it go into lib/ as well.
 */
export async function extractWheel(wheelPath: string, destDir: string, python: string) {
  const partial = `${destDir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const wheels = [wheelPath];
  if (basename(wheelPath).startsWith('tensorflow-')) {
    const dir = join(wheelPath, '..');
    wheels.push(
      ...readdirSync(dir)
        .filter((n) => n.startsWith('nvidia_'))
        .map((n) => join(dir, n)),
    );
  }
  for (const wheel of wheels) {
    const args = ['-c', EXTRACT_PY, wheel, partial, HEADER_PREFIXES.join(','), LIBRARIES.join(',')];
    const result = await exec(python, args);
    if (result.code !== 0) {
      throw new SetupError(`extracting ${wheel} failed:\n${tail(result.stderr)}`);
    }
  }
  const missing = LIBRARIES.filter((lib) => !existsSync(join(partial, 'lib', lib)));
  if (missing.length > 0 || !existsSync(join(partial, 'include/tensorflow/c/c_api.h'))) {
    throw new SetupError(
      `wheel ${basename(wheelPath)} lacks ${missing.join(', ') || 'tensorflow/include/tensorflow/c/c_api.h'}`,
    );
  }
  rmSync(destDir, { recursive: true, force: true });
  renameSync(partial, destDir);
}
