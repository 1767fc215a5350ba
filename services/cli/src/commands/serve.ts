// `gsil serve <service>`: the CLI is the composition root that starts one service in
// this process. The services themselves never import one another.
import { writeFile } from 'node:fs/promises';
import { settingsFromArgs } from '../local/service-settings.ts';

export interface ServeOptions {
  port?: number;
  host?: string;
  metricsPort?: number;
  modelRoot?: string;
  modelStore?: string;
  provider?: string;
  threads?: number;
  runsDir?: string;
  readyFile?: string;
  exitWithParent?: boolean;
}

interface RunningService {
  port: number;
  /** Graceful shutdown, as on SIGTERM. */
  close(): Promise<void>;
  /** Resolves when the server has shut down (SIGTERM, SIGINT or close()). */
  closed: Promise<void>;
}

// Each service validates its options with its own schema (an enum such as `provider`
// is checked there, with a message naming the flag), so plain strings pass through.
type Loose<T> = T extends (options: infer O, ...rest: never[]) => unknown ? O : never;

const SERVICES: Record<string, (options: ServeOptions) => Promise<RunningService>> = {
  sampler: async (options) => {
    const { startSampler } = await import('../../../sampler/src/main.ts');
    return startSampler(options as Loose<typeof startSampler>);
  },
  ratio: async (options) => {
    const { startRatio } = await import('../../../ratio/src/main.ts');
    return startRatio(options as Loose<typeof startRatio>);
  },
  trainer: async (options) => {
    const { startTrainer } = await import('../../../trainer/src/main.ts');
    return startTrainer(options as Loose<typeof startTrainer>);
  },
};

export async function serveCommand(
  service: string,
  flagOptions: ServeOptions,
  extraSettings: string[] = [],
): Promise<void> {
  const start = SERVICES[service];
  if (!start) {
    throw new Error(
      `unknown service '${service}'; expected one of ${Object.keys(SERVICES).join(', ')}`,
    );
  }
  // Settings beyond the common flags (--max-batch-size ...) go to the service's schema.
  const options = { ...settingsFromArgs(service, extraSettings), ...flagOptions };
  const running = await start(options);
  if (options.exitWithParent) {
    // The parent holds our stdin open; when it exits (even by SIGKILL) the pipe closes
    // and we shut down gracefully instead of lingering as an orphan.
    const onParentGone = () => void running.close();
    process.stdin.on('end', onParentGone);
    process.stdin.on('error', onParentGone);
    process.stdin.resume();
  }
  // The ready file tells a parent process (gsil run, tests) the bound port once the
  // service answers SERVING, so nobody has to sleep and guess.
  if (options.readyFile) await writeFile(options.readyFile, `${running.port}\n`);
  await running.closed;
  // The service has shut down; the stdin watch above (and any native thread pool) must
  // not keep the process alive after it.
  process.stdin.destroy();
  process.exit(0);
}
