// `gsil run`: the embedded default. Starts the three services as separate processes on
// loopback (unless addresses of running ones are given), runs a recipe through the
// trainer's gRPC API, shows progress, and writes the run folder.
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { loadGsm8kJsonl, loadMawpsCsv } from '@gsil/data';
import { parseRunConfig } from '@gsil/run-config';
import { buildRunConfig, type RunFlags } from '../local/recipe.ts';
import { LocalServices } from '../local/service-processes.ts';
import { watchRunToFolder } from '../local/watch.ts';

export interface RunOptions extends RunFlags {
  out?: string;
  sampler?: string[];
  ratio?: string[];
  trainer?: string;
  config?: string;
  printConfig?: boolean;
}

function readConfigFile(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`--config ${path}: ${(error as Error).message}`);
  }
}

function checkTaskFiles(task: 'mawps' | 'gsm8k', files: Array<string | undefined>): void {
  for (const file of files) {
    if (!file) continue;
    const rows = task === 'mawps' ? loadMawpsCsv(file) : loadGsm8kJsonl(file);
    if (rows.length === 0) throw new Error(`${file}: no rows`);
  }
}

function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '');
}

export async function runCommand(options: RunOptions): Promise<void> {
  const fileConfig = options.config ? readConfigFile(options.config) : {};
  // Replica addresses in a config file count like the flags (which win).
  options.sampler ??= fileConfig.samplerAddresses as string[] | undefined;
  options.ratio ??= fileConfig.ratioAddresses as string[] | undefined;
  const outDir = resolve(options.out ?? `runs/${timestamp()}`);
  const runId = outDir.split('/').pop()!;
  const config = buildRunConfig(options, fileConfig);
  // Validate here too, so a bad flag fails before any service starts; the trainer
  // validates again (it also serves other clients).
  const effective = parseRunConfig({
    ...config,
    samplerAddresses: options.sampler ?? ['(started by gsil run)'],
    ratioAddresses: options.ratio ?? ['(started by gsil run)'],
  });
  // Data files given on the command line are read now, so a missing file or a malformed
  // row is reported before any service starts (the trainer checks them again).
  checkTaskFiles(effective.task.name, [options.train, options.dev]);
  if (options.printConfig) {
    process.stdout.write(`${JSON.stringify(effective, null, 2)}\n`);
    return;
  }
  mkdirSync(`${outDir}/logs`, { recursive: true });

  // 1. Services: the given addresses, or our own processes on free loopback ports.
  const local = new LocalServices();
  const stop = async () => {
    await local.stopAll();
  };
  // Ctrl-C: stop watching first (an open WatchRun stream would hold the trainer's
  // graceful shutdown for its whole grace period), then stop the services.
  const watching = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\ngsil: ${signal}: stopping services\n`);
    watching.abort();
    void stop().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const log = (name: string) => openSync(`${outDir}/logs/${name}.log`, 'a');
    let trainerAddress = options.trainer;
    if (!trainerAddress) {
      process.stderr.write('gsil: starting trainer, sampler and ratio services on loopback\n');
      const trainer = await local.start(
        'trainer',
        ['--runs-dir', `${outDir}/trainer`],
        log('trainer'),
      );
      trainerAddress = trainer.address;
    }
    // The local sampler decodes on every core: sampling and training take turns, so the
    // cores are free while it runs.
    const samplerArgs = ['--model-store', trainerAddress];
    samplerArgs.push('--decode-workers', String(availableParallelism()));
    const samplerAddresses = options.sampler ?? [
      (await local.start('sampler', samplerArgs, log('sampler'))).address,
    ];
    const ratioAddresses = options.ratio ?? [
      (await local.start('ratio', ['--model-store', trainerAddress], log('ratio'))).address,
    ];
    process.stderr.write(
      `gsil: trainer ${trainerAddress}, sampler ${samplerAddresses.join(',')}, ` +
        `ratio ${ratioAddresses.join(',')}\n`,
    );

    // 2. The run, watched to completion; the folder gets metrics, summary, report, model.
    await watchRunToFolder({
      signal: watching.signal,
      trainerAddress,
      runId,
      outDir,
      config: { ...config, samplerAddresses, ratioAddresses },
    });
    process.stderr.write(`gsil: run folder ${outDir}\n`);
  } finally {
    await stop();
  }
}
