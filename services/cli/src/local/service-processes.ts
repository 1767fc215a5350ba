// Starts sampler, ratio and trainer as separate processes on free loopback ports, the
// same entry points a cluster runs (`gsil serve <service>`), and stops them again.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForServing } from '@gsil/service-kit';

const CLI_MAIN = new URL('../main.ts', import.meta.url).pathname;
const START_TIMEOUT_MS = 120_000;

export interface LocalService {
  name: string;
  address: string;
  process: ChildProcess;
}

/** The command that runs our TypeScript entry point: Bun itself, or tsx under Node. */
function runtimeCommand(): [string, string[]] {
  if (process.versions.bun) return [process.execPath, [CLI_MAIN]];
  const tsx = new URL('../../../../node_modules/.bin/tsx', import.meta.url).pathname;
  return [tsx, [CLI_MAIN]];
}

export class LocalServices {
  readonly services: LocalService[] = [];
  private readonly scratchDir = mkdtempSync(join(tmpdir(), 'gsil-run-'));
  private stopping = false;

  /**
   * Starts `gsil serve <name> --port 0` and resolves with its address once its health
   * service answers SERVING. The child exits when our stdin pipe to it closes, so no
   * service outlives this process even if it is killed.
   */
  async start(name: string, args: string[], logFile: number | 'inherit'): Promise<LocalService> {
    const readyFile = join(this.scratchDir, `${name}.port`);
    const [command, prefix] = runtimeCommand();
    const child = spawn(
      command,
      [
        ...prefix,
        'serve',
        name,
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--ready-file',
        readyFile,
        '--exit-with-parent',
        ...args,
      ],
      { stdio: ['pipe', logFile, logFile], env: process.env },
    );
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => {
        if (!this.stopping) {
          reject(new Error(`${name} exited during start-up (code ${code}, signal ${signal})`));
        }
      }),
    );
    const port = await Promise.race([this.waitForPortFile(readyFile, name), exited]);
    const address = `127.0.0.1:${port}`;
    await Promise.race([waitForServing(address, START_TIMEOUT_MS), exited]);
    const service = { name, address, process: child };
    this.services.push(service);
    return service;
  }

  private async waitForPortFile(file: string, name: string): Promise<number> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      try {
        const port = Number(readFileSync(file, 'utf8').trim());
        if (port > 0) return port;
      } catch {
        // Not written yet: the service writes it once it is SERVING.
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${name} did not report its port within ${START_TIMEOUT_MS} ms`);
  }

  /** SIGTERM every child (graceful shutdown), SIGKILL those still alive after graceMs. */
  stopAll(graceMs = 10_000): Promise<void> {
    // Once only: a second SIGTERM would reach a service whose handler is already gone
    // (it is shutting down) and kill it mid-shutdown.
    this.stopped ??= this.stopEach(graceMs);
    return this.stopped;
  }

  private stopped: Promise<void> | undefined;

  private async stopEach(graceMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.services.map(
        ({ name, process: child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
            child.once('exit', (code, signal) => {
              clearTimeout(timer);
              if (code !== 0) {
                process.stderr.write(
                  `gsil: ${name} did not stop cleanly (exit code ${code}, signal ${signal}); ` +
                    'see its log\n',
                );
              }
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    rmSync(this.scratchDir, { recursive: true, force: true });
  }
}
