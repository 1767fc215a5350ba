#!/usr/bin/env bun
// The `gsil` command. Each subcommand lives in its own module under commands/ and is
// loaded only when used, so `gsil --help` stays fast and a command's heavy
// dependencies (TF.js, ONNX Runtime) load only where needed.
import { Command } from 'commander';
import { registerCommands } from './commands/index.ts';

const program = new Command('gsil')
  .description(
    'Align language models with demonstration data by generalized self-imitation learning (GSIL).',
  )
  .showHelpAfterError()
  .enablePositionalOptions();

registerCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`gsil: ${message}\n`);
  if (process.env.GSIL_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
