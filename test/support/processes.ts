// Real processes for the integration tests: `gsil serve <service>` children that report
// their port through a ready file, and one-shot `gsil <command>` runs. Every child is
// tracked so afterAll can stop whatever is still alive, even after a failed test.
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ProcessExit, type ServiceProcess, startServiceProcess } from '@gsil/service-kit';

/** SIGTERM, then the exit and how long it took; SIGKILL only after graceMs. */
export { type ServiceProcess, stopServiceProcess as stopService } from '@gsil/service-kit';
export type Exit = ProcessExit;

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;
export const CLI_MAIN = join(REPO_ROOT, 'services/cli/src/main.ts');

const tracked: ChildProcess[] = [];
let servicesStarted = 0;

/**
 * Starts `gsil serve <name> --port 0 --ready-file <scratch>/<name>-<n>.port` and resolves
 * once the ready file names a port and the health service answers SERVING there.
 */
export async function startService(
  name: string,
  args: string[],
  options: { scratchDir: string; env?: Record<string, string>; logFile?: number },
): Promise<ServiceProcess> {
  const id = `${name}-${servicesStarted++}`;
  // Service output (ONNX Runtime and TF.js banners included) goes to a file, shown on failure.
  const logPath = join(options.scratchDir, `${id}.log`);
  const logFile = options.logFile ?? openSync(logPath, 'a');
  const service = await startServiceProcess({
    name,
    command: [process.execPath, CLI_MAIN],
    args,
    readyFile: join(options.scratchDir, `${id}.port`),
    spawnOptions: {
      cwd: REPO_ROOT,
      stdio: ['ignore', logFile, logFile],
      env: { ...process.env, GSIL_LOG_LEVEL: 'warn', ...options.env },
    },
    logPath: options.logFile === undefined ? logPath : undefined,
  });
  tracked.push(service.child);
  return service;
}

/** afterAll: SIGKILL every child this module started that is still running. */
export function killAll(): void {
  for (const child of tracked) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs `bun services/cli/src/main.ts <args>` to completion, as a user would. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  tracked.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Whether a process with this id is still running (and not a zombie). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name, is the state; Z is a zombie.
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
