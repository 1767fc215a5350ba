// Real processes for the integration tests: `gsil serve <service>` children that report
// their port through a ready file, and one-shot `gsil <command>` runs. Every child is
// tracked so afterAll can stop whatever is still alive, even after a failed test.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitForServing } from '@gsil/service-kit';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;
export const CLI_MAIN = join(REPO_ROOT, 'services/cli/src/main.ts');

/** Start-up of one service: loading ONNX Runtime or TF.js takes seconds on 2 cores. */
const START_TIMEOUT_MS = 120_000;
const POLL_INTERVAL_MS = 50;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  name: string;
  address: string;
  child: ChildProcess;
  /** Resolves when the process has exited, with its code or signal. */
  exited: Promise<Exit>;
}

const tracked: ChildProcess[] = [];

function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal: signal as NodeJS.Signals })),
  );
}

function tail(path: string, chars = 4000): string {
  return existsSync(path) ? readFileSync(path, 'utf8').slice(-chars) : '(no log)';
}

/**
 * Starts `gsil serve <name> --port 0 --ready-file <scratch>/<name>-<n>.port` and resolves
 * once the ready file names a port and the health service answers SERVING there.
 */
export async function startService(
  name: string,
  args: string[],
  options: { scratchDir: string; env?: Record<string, string>; logFile?: number },
): Promise<ServiceProcess> {
  const id = `${name}-${tracked.length}`;
  const readyFile = join(options.scratchDir, `${id}.port`);
  // Service output (ONNX Runtime and TF.js banners included) goes to a file, shown on failure.
  const logPath = join(options.scratchDir, `${id}.log`);
  const logFile = options.logFile ?? openSync(logPath, 'a');
  const child = spawn(
    process.execPath,
    [
      CLI_MAIN,
      'serve',
      name,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--ready-file',
      readyFile,
    ].concat(args),
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', logFile, logFile],
      env: { ...process.env, GSIL_LOG_LEVEL: 'warn', ...options.env },
    },
  );
  tracked.push(child);
  const exited = exitOf(child);

  const deadlineMs = Date.now() + START_TIMEOUT_MS;
  let port = 0;
  while (port === 0) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited during start-up (code ${child.exitCode}):\n${tail(logPath)}`);
    }
    if (Date.now() > deadlineMs) throw new Error(`${name}: no ready file:\n${tail(logPath)}`);
    if (existsSync(readyFile)) port = Number(readFileSync(readyFile, 'utf8').trim()) || 0;
    if (port === 0) await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  const address = `127.0.0.1:${port}`;
  await waitForServing(address, deadlineMs - Date.now());
  return { name, address, child, exited };
}

/** SIGTERM, then the exit and how long it took; SIGKILL only after graceMs. */
export async function stopService(
  service: ServiceProcess,
  graceMs = 10_000,
): Promise<Exit & { elapsedMs: number }> {
  const startedMs = Date.now();
  const timer = setTimeout(() => service.child.kill('SIGKILL'), graceMs);
  service.child.kill('SIGTERM');
  const exit = await service.exited;
  clearTimeout(timer);
  return { ...exit, elapsedMs: Date.now() - startedMs };
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
