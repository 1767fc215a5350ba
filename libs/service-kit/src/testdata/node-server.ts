// A tiny TrainerService run under Node.js by node-smoke.test.ts: proves the kit and the
// contracts work outside Bun. Prints its address on stdout, exits on SIGTERM.
import { Run, TrainerServiceService } from '@gsil/contracts';
import { createLogger, defineConfig, invalidArgument, startServer } from '@gsil/service-kit';
import { z } from 'zod';

const Config = z
  .object({
    port: z.number().int().min(0).max(65535).default(0).describe('gRPC port; 0 picks a free one'),
  })
  .strict();

const config = defineConfig(Config, { envPrefix: 'GSIL_SMOKE_', argv: process.argv.slice(2) });
const logger = createLogger('smoke');
const running = await startServer({
  name: 'smoke',
  port: config.port,
  host: '127.0.0.1',
  services: [
    {
      definition: TrainerServiceService,
      implementation: {
        getRun: async (call: { request: { runId: string } }) => {
          if (!call.request.runId) throw invalidArgument('run_id', 'is required');
          return Run.fromPartial({ runId: call.request.runId, stage: process.version });
        },
      },
    },
  ],
  logger,
});
running.setServing();
process.stdout.write(`${JSON.stringify({ address: running.address })}\n`);
