import { parseRunConfig } from '@gsil/run-config';
import { setupCommand } from '@gsil/tfjs-native';
import { type Command, Option } from 'commander';
import { buildRunConfig } from '../local/recipe.ts';
import { settingsHelp } from '../local/service-settings.ts';

/** The default recipe's effective run config, for the defaults `gsil run --help` shows. */
const MAWPS = parseRunConfig({
  ...buildRunConfig({}, {}),
  samplerAddresses: ['-'],
  ratioAddresses: ['-'],
});
const GSIL = MAWPS.stages.gsil;
const byDefault = (value: unknown) => ` (default recipe: ${value})`;

/** Repeatable option values accumulate into an array. */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').filter(Boolean)];
}

function number(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed)) throw new Error(`--${name} must be a number, got '${value}'`);
    return parsed;
  };
}

export function registerCommands(program: Command): void {
  program
    .command('run')
    .description(
      'Run a recipe end to end: start sampler, ratio and trainer services on loopback, ' +
        'SFT then GSIL iterations, evaluation, run folder with report',
    )
    .addOption(new Option('--recipe <name>', 'recipe').choices(['mawps', 'gsm8k']).default('mawps'))
    .option('--quick', 'shrink everything for a smoke run (under a minute here)')
    .option('--out <dir>', 'run folder (default runs/<timestamp>)')
    .option('--train <file>', 'training file in the recipe format (default: the resolved asset)')
    .option('--dev <file>', 'dev file in the recipe format (default: the resolved asset)')
    .option('--model <dir>', 'base model: a Hugging Face style directory (default stories260K)')
    .option(
      '--sft-epochs <n>',
      `epochs of the SFT stage; 0 skips it${byDefault(MAWPS.stages.sft?.epochs)}`,
      number('sft-epochs'),
    )
    .option(
      '--iterations <n>',
      `GSIL iterations${byDefault(GSIL?.iterations)}`,
      number('iterations'),
    )
    .option(
      '--lr <x>',
      `peak learning rate of the GSIL updates${byDefault(MAWPS.optimizer.learningRate)}`,
      number('lr'),
    )
    .addOption(
      new Option('--loss <name>', `GSIL loss${byDefault(GSIL?.loss)}`).choices([
        'bernoulli',
        'brier',
        'hinge',
        'kliep',
        'lsif',
        'spin',
        'sft',
      ]),
    )
    .option(
      '--alpha <x>',
      `scale of the log ratio in f = alpha * r + beta${byDefault(GSIL?.alpha)}`,
      number('alpha'),
    )
    .option(
      '--beta <x>',
      `shift of the log ratio in f = alpha * r + beta${byDefault(GSIL?.beta)}`,
      number('beta'),
    )
    .option(
      '--samples-per-prompt <n>',
      `self-generated samples per prompt${byDefault(GSIL?.samplesPerPrompt)}`,
      number('samples'),
    )
    .option(
      '--temperature <t>',
      `sampling temperature for self-data, 0 = greedy${byDefault(GSIL?.sampling.temperature)}`,
      number('t'),
    )
    .option(
      '--seed <n>',
      `seed of shuffling, initialisation and sampling${byDefault(MAWPS.seed)}`,
      number('seed'),
    )
    .option(
      '--backend <name>',
      'TF.js backend: auto (native when built, else wasm), tensorflow, wasm, cpu (default auto)',
    )
    .option('--sampler <addr>', 'use running sampler replica(s) host:port (repeatable)', collect)
    .option('--ratio <addr>', 'use running ratio replica(s) host:port (repeatable)', collect)
    .option('--trainer <addr>', 'use a running trainer host:port')
    .option('--config <file>', 'run config JSON; flags override its fields')
    .option('--print-config', 'print the effective run config and exit')
    .action(async (options) => (await import('./run.ts')).runCommand(options));

  program
    .command('serve')
    .description('Start one service: sampler, ratio or trainer')
    .argument('<service>', 'sampler | ratio | trainer')
    .argument('[settings...]', 'any setting listed below, as --name value')
    .option('--port <n>', 'gRPC port (0 picks a free one)', number('port'))
    .option('--host <host>', 'bind address')
    .option('--metrics-port <n>', 'Prometheus /metrics port (0 = ephemeral, -1 = off)', number('m'))
    .option('--model-root <dir>', 'sampler/ratio: directory of model versions <name>/<version>/')
    .option('--model-store <addr>', 'sampler/ratio: trainer address to pull versions from')
    .option('--provider <name>', 'sampler/ratio: ONNX Runtime execution provider')
    .option('--threads <n>', 'sampler/ratio: ONNX Runtime intra-op threads', number('threads'))
    .option('--runs-dir <dir>', 'trainer: where run folders and the model store live')
    .option('--ready-file <file>', 'write the bound port to this file once SERVING')
    .option('--exit-with-parent', 'shut down when standard input closes (used by gsil run)')
    .allowUnknownOption()
    .addHelpText('after', () => settingsHelp())
    .action(async (service: string, settings: string[], options) =>
      (await import('./serve.ts')).serveCommand(service, options, settings),
    );

  const convert = program.command('convert').description('Convert models into our format');
  convert
    .command('llama2c')
    .description('Convert a llama2.c checkpoint and vocabulary into a Hugging Face directory')
    .option('--checkpoint <file>', 'llama2.c legacy float32 .bin (default: stories260K asset)')
    .option('--tokenizer <file>', 'llama2.c tok*.bin or sentencepiece .model (default: tok512)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--onnx', 'also write model.onnx into the directory')
    .action(async (options) => (await import('./convert.ts')).convertLlama2cCommand(options));

  program
    .command('export-onnx')
    .description('Export a Hugging Face style model directory as an ONNX decoder with KV cache')
    .requiredOption('--model <dir>', 'model directory')
    .requiredOption('--out <file>', 'output .onnx file')
    .action(async (options) => (await import('./convert.ts')).exportOnnxCommand(options));

  program
    .command('generate')
    .description('Generate a completion with ONNX Runtime; prints only the completion on stdout')
    .option('--model <dir>', 'model directory (default: stories260K, converted on the fly)')
    .option('--prompt <text>', 'prompt text (BOS is prepended)', '')
    .option('--max-new-tokens <n>', 'tokens to generate', number('max-new-tokens'), 256)
    .option('--temperature <t>', '0 = greedy', number('temperature'), 0)
    .option('--top-p <p>', 'nucleus sampling mass', number('top-p'), 1)
    .option('--top-k <k>', 'keep the k most probable tokens (0 = off)', number('top-k'), 0)
    .option('--seed <n>', 'sampling seed', number('seed'), 0)
    .action(async (options) => (await import('./generate.ts')).generateCommand(options));

  program
    .command('eval')
    .description('Evaluate a saved model on a task')
    .requiredOption('--model <dir>', 'model directory (with model.onnx)')
    .addOption(new Option('--task <name>', 'task').choices(['mawps', 'gsm8k']).default('mawps'))
    .option('--data <file>', 'dev file (default: the resolved asset)')
    .option('--limit <n>', 'evaluate the first n rows only', number('limit'))
    .option('--max-new-tokens <n>', 'generation budget per answer', number('max-new-tokens'))
    .option('--json', 'print the metrics as JSON')
    .action(async (options) => (await import('./eval.ts')).evalCommand(options));

  program
    .command('report')
    .description('Redraw report.html and summary.json of a run folder from its metrics.jsonl')
    .argument('<run-dir>', 'run folder written by gsil run')
    .action(async (dir: string) => (await import('./report.ts')).reportCommand(dir));

  const assets = program.command('assets').description('Known data and model assets');
  assets
    .command('list')
    .description('Show each asset: where it was found (or why not), sha256, license')
    .action(async () => (await import('./assets.ts')).assetsListCommand());
  assets
    .command('import')
    .description('Copy a local folder of assets into the cache (air-gapped installs)')
    .argument('<dir>', 'folder holding the asset files')
    .action(async (dir: string) => (await import('./assets.ts')).assetsImportCommand(dir));

  // The native TF.js backend's own command (libs/tfjs-native), under `gsil setup`.
  program.command('setup').description('Optional native backends').addCommand(setupCommand());
}
