import { expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { type Run, TrainerServiceClient } from '@gsil/contracts';
import { waitForServing } from './health-client.js';

const REPO_ROOT = new URL('../../../', import.meta.url).pathname;

test('a server built with the kit runs under Node.js and stops on SIGTERM', async () => {
  const child = spawn(
    'node',
    [`${REPO_ROOT}node_modules/.bin/tsx`, 'libs/service-kit/src/testdata/node-server.ts'],
    { cwd: REPO_ROOT, env: { ...process.env, GSIL_LOG_LEVEL: 'info' } },
  );
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const address = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(JSON.parse(String(d)).address));
    child.once('exit', () => reject(new Error(`server exited early: ${stderr}`)));
  });

  await waitForServing(address, 10_000);
  const client = new TrainerServiceClient(address, credentials.createInsecure());
  const run = await new Promise<Run>((resolve, reject) =>
    client.getRun({ runId: 'r7' }, (err, res) => (err ? reject(err) : resolve(res))),
  );
  expect(run.runId).toBe('r7');
  expect(run.stage).toMatch(/^v20\./); // process.version of the server: Node, not Bun
  const err = await new Promise<ServiceError>((resolve) =>
    client.getRun({ runId: '' }, (e) => resolve(e as ServiceError)),
  );
  expect(err.code).toBe(status.INVALID_ARGUMENT);
  client.close();

  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  const lines = stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(lines.map((l) => l.msg)).toContain('stopped');
  expect(lines.find((l) => l.code === 'INVALID_ARGUMENT')?.method).toBe(
    '/gsil.v1.TrainerService/GetRun',
  );
}, 30_000);
