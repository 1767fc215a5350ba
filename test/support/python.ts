// Finds a Python for the cross-checks that need one (the Python gRPC client test, the
// benchmarks' PyTorch baselines). `python3` alone is not enough: npx and nx put their
// runtime's folder (often /usr/bin, a system Python without the packages) ahead of a
// pyenv or virtualenv one on PATH.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface FoundPython {
  /** The interpreter's path; empty when none qualifies. */
  python: string;
  /** Why none qualifies (each candidate and its import error); empty when one does. */
  missing: string;
}

/**
 * The first python3 that imports every one of `modules`: $`envVar` when set, else each
 * python3 along PATH in order.
 */
export function findPython(modules: string[], envVar: string): FoundPython {
  const pathDirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  const chosen = process.env[envVar];
  const candidates = chosen
    ? [chosen]
    : [...new Set(pathDirs.map((dir) => join(dir, 'python3')).filter((p) => existsSync(p)))];
  const failures: string[] = [];
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' });
    if (probe.status === 0) return { python, missing: '' };
    failures.push(`${python}: ${(probe.error?.message ?? probe.stderr).trim().split('\n').at(-1)}`);
  }
  const tried = failures.length > 0 ? failures.join('; ') : 'no python3 on PATH';
  return { python: '', missing: `no python3 with ${modules.join(', ')} (${tried}; set ${envVar})` };
}
