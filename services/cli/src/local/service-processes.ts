// Starts sampler, ratio and trainer as separate processes on free loopback ports, the
// same entry points a cluster runs (`gsil serve <service>`), and stops them again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '@gsil/service-kit';

const CLI_MAIN = new URL('../main.ts', import.meta.url).pathname;

/** One started service: its name, address, child process and exit. */
export type LocalService = ServiceProcess;

/** The command that runs our TypeScript entry point: Bun itself, or tsx under Node. */
function runtimeCommand(): [string, string] {
  if (process.versions.bun) return [process.execPath, CLI_MAIN];
  const tsx = new URL('../../../../node_modules/.bin/tsx', import.meta.url).pathname;
  return [tsx, CLI_MAIN];
}

export class LocalServices {
  readonly services: LocalService[] = [];
  private readonly scratchDir = mkdtempSync(join(tmpdir(), 'gsil-run-'));
  private stopped: Promise<void> | undefined;

  /**
   * Starts `gsil serve <name> --port 0` and resolves with its address once its health
   * service answers SERVING. The child exits when our stdin pipe to it closes, so no
   * service outlives this process even if it is killed.
   */
  async start(name: string, args: string[], logFile: number | 'inherit'): Promise<LocalService> {
    const service = await startServiceProcess({
      name,
      command: runtimeCommand(),
      args: ['--exit-with-parent', ...args],
      readyFile: join(this.scratchDir, `${name}.port`),
      spawnOptions: { stdio: ['pipe', logFile, logFile], env: process.env },
    });
    this.services.push(service);
    return service;
  }

  /**
   * SIGTERM every child (graceful shutdown), SIGKILL those still alive after graceMs.
   * Once only: both a signal handler and the run's own clean-up call it.
   */
  stopAll(graceMs = 10_000): Promise<void> {
    this.stopped ??= this.stopEach(graceMs);
    return this.stopped;
  }

  private async stopEach(graceMs: number): Promise<void> {
    await Promise.all(
      this.services.map(async (service) => {
        // One that exited on its own (a crash) has nothing to stop; its log says why.
        if (service.child.exitCode !== null || service.child.signalCode !== null) return;
        const { code, signal } = await stopServiceProcess(service, graceMs);
        if (code !== 0) {
          process.stderr.write(
            `gsil: ${service.name} did not stop cleanly (exit code ${code}, signal ${signal}); ` +
              'see its log\n',
          );
        }
      }),
    );
    rmSync(this.scratchDir, { recursive: true, force: true });
  }
}
