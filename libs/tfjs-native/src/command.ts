import { Command } from 'commander';
import { SetupError } from './preflight.ts';
import { setupTfjsNative } from './setup.ts';

/**
 * `tfjs-native [--wheel <path.whl>] [--gpu] [--cache-dir <dir>] [--verbose]`, for the CLI to
 * add under `gsil setup`. Exits 1 with a one-paragraph reason when something is missing.
 */
export function setupCommand(): Command {
  return new Command('tfjs-native')
    .description(
      'build the native TF.js backend (tfjs-node) from a TensorFlow Python wheel; no-op when built',
    )
    .option('--wheel <path>', 'TensorFlow wheel on disk (default: pip downloads tensorflow-cpu)')
    .option('--gpu', 'use the CUDA-enabled wheel tensorflow[and-cuda] (untested here)', false)
    .option(
      '--cache-dir <dir>',
      'extracted libraries and headers (default ~/.cache/gsil/tfjs-native)',
    )
    .option('--verbose', 'show node-gyp output', false)
    .action(async (opts: { wheel?: string; gpu: boolean; cacheDir?: string; verbose: boolean }) => {
      try {
        const result = await setupTfjsNative({
          wheel: opts.wheel,
          gpu: opts.gpu,
          cacheDir: opts.cacheDir,
          verbose: opts.verbose,
          log: (line) => console.error(line),
        });
        const phases = Object.entries(result.timingsMs)
          .map(([phase, ms]) => `${phase} ${(ms / 1000).toFixed(1)}s`)
          .join(', ');
        console.log(
          `${result.alreadyBuilt ? 'already built' : 'built'}: ${result.addonPath} (${phases})`,
        );
      } catch (err) {
        if (!(err instanceof SetupError)) throw err;
        console.error(`gsil setup tfjs-native: ${err.message}`);
        process.exitCode = 1;
      }
    });
}
