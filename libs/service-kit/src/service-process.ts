// A service as a child process: `<command> serve <name>` on a free loopback port, ready
// once the port it writes to its ready file answers SERVING, stopped with one SIGTERM.
// The mechanics only: stdio, environment and runtime are the caller's.
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { waitForServing } from './health-client.js';

/** Start-up of one service: loading ONNX Runtime or TF.js takes seconds on 2 cores. */
export const DEFAULT_START_TIMEOUT_MS = 120_000;
/** How long a service may take over its graceful shutdown before it is killed. */
export const DEFAULT_STOP_GRACE_MS = 10_000;
const READY_POLL_INTERVAL_MS = 50;
const LOG_TAIL_CHARS = 4000;
const HOST = '127.0.0.1';

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartServiceProcessOptions {
  /** The service to serve, e.g. "sampler"; errors name it too. */
  name: string;
  /** How to run the gsil CLI: the executable and its leading arguments. */
  command: [string, ...string[]];
  /** Flags after `serve <name> --port 0 --host 127.0.0.1 --ready-file <readyFile>`. */
  args?: string[];
  /** Where the child writes its bound port once SERVING; removed first if it exists. */
  readyFile: string;
  /** stdio, env, cwd: the caller's policy, passed to spawn as given. */
  spawnOptions?: SpawnOptions;
  /** For the ready file and SERVING together (default 120 000). */
  timeoutMs?: number;
  /** The file the child logs to, if any: its tail goes into a start-up error. */
  logPath?: string;
}

export interface ServiceProcess {
  name: string;
  /** 127.0.0.1:port, answering SERVING. */
  address: string;
  child: ChildProcess;
  /** Resolves when the child has exited (never rejects). */
  exited: Promise<ProcessExit>;
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function exitOf(child: ChildProcess): Promise<ProcessExit> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    // A command that cannot be started at all emits 'error' and never 'exit'.
    child.once('error', () => {
      if (child.pid === undefined) resolve({ code: null, signal: null });
    });
  });
}

function readPort(readyFile: string): number {
  if (!existsSync(readyFile)) return 0;
  // An empty file is one being written: the port follows in the same write.
  return Number(readFileSync(readyFile, 'utf8').trim()) || 0;
}

function logTail(logPath: string): string {
  const text = existsSync(logPath) ? readFileSync(logPath, 'utf8').slice(-LOG_TAIL_CHARS) : '';
  return `\n--- end of ${logPath} ---\n${text || '(empty)'}`;
}

/**
 * Runs `<command> serve <name> --port 0 --host 127.0.0.1 --ready-file <readyFile> <args>`
 * and resolves once the ready file names a port whose health service answers SERVING.
 * Rejects, naming the service, if the child exits first or timeoutMs passes; a child that
 * failed to start is killed, since the caller gets no handle to stop it.
 */
export async function startServiceProcess(
  options: StartServiceProcessOptions,
): Promise<ServiceProcess> {
  const { name, readyFile, logPath } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const deadlineMs = Date.now() + timeoutMs;
  rmSync(readyFile, { force: true });

  const [executable, ...leading] = options.command;
  const serveArgs = ['serve', name, '--port', '0', '--host', HOST, '--ready-file', readyFile];
  const argv = [...leading, ...serveArgs, ...(options.args ?? [])];
  const child = spawn(executable, argv, options.spawnOptions ?? {});
  let spawnError = 'no exit code';
  child.once('error', (err) => {
    spawnError = err.message;
  });
  let exit: ProcessExit | null = null;
  const exited = exitOf(child).then((e) => {
    exit = e;
    return e;
  });
  const failure = (reason: string) => {
    if (isRunning(child)) child.kill('SIGKILL');
    return new Error(`${name} ${reason}${logPath ? logTail(logPath) : ''}`);
  };
  const exitedEarly = ({ code, signal }: ProcessExit) => {
    const how = code !== null ? `code ${code}` : signal ? `signal ${signal}` : spawnError;
    return failure(`exited during start-up (${how})`);
  };

  // 1. The port, from the ready file.
  let port = 0;
  while (port === 0) {
    if (exit) throw exitedEarly(exit);
    if (Date.now() > deadlineMs) {
      throw failure(`did not write its port to ${readyFile} within ${timeoutMs} ms`);
    }
    port = readPort(readyFile);
    if (port === 0) await new Promise((resolve) => setTimeout(resolve, READY_POLL_INTERVAL_MS));
  }

  // 2. SERVING there, unless the child exits first.
  const address = `${HOST}:${port}`;
  // A child that exits stops the polling too, not only this wait.
  const gone = new AbortController();
  void exited.then(() => gone.abort(new Error('the process exited')));
  const serving = waitForServing(
    address,
    Math.max(0, deadlineMs - Date.now()),
    '',
    gone.signal,
  ).then(
    () => null,
    (err: Error) => err,
  );
  const outcome = await Promise.race([serving, exited]);
  if (outcome instanceof Error) throw failure(`at ${address}: ${outcome.message}`);
  if (outcome) throw exitedEarly(outcome);
  return { name, address, child, exited };
}

const stopping = new WeakMap<ChildProcess, Promise<ProcessExit & { elapsedMs: number }>>();

/**
 * SIGTERM (graceful shutdown), then SIGKILL if the child is still alive after graceMs.
 * Resolves with the exit and how long it took. The signal is sent once: calling it again
 * returns the same promise, since a second SIGTERM would reach a service whose handler is
 * already gone and kill it mid-shutdown.
 */
export function stopServiceProcess(
  service: Pick<ServiceProcess, 'child' | 'exited'>,
  graceMs = DEFAULT_STOP_GRACE_MS,
): Promise<ProcessExit & { elapsedMs: number }> {
  const { child, exited } = service;
  let stopped = stopping.get(child);
  if (!stopped) {
    stopped = (async () => {
      const startedMs = Date.now();
      if (!isRunning(child)) return { ...(await exited), elapsedMs: 0 };
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.kill('SIGTERM');
      const exit = await exited;
      clearTimeout(timer);
      return { ...exit, elapsedMs: Date.now() - startedMs };
    })();
    stopping.set(child, stopped);
  }
  return stopped;
}
