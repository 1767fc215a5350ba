import { afterAll, expect, test } from 'bun:test';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHealth } from './health-client.js';
import { startServiceProcess, stopServiceProcess } from './service-process.js';

const scratch = mkdtempSync(join(tmpdir(), 'gsil-service-process-'));
const SERVER_TS = new URL('./server.ts', import.meta.url).pathname;
const LOGGER_TS = new URL('./logger.ts', import.meta.url).pathname;

// A stand-in for `gsil serve`: a real kit server (health only) that writes its port to
// the ready file once SERVING and exits 0 after a graceful shutdown on SIGTERM.
const healthServer = join(scratch, 'health-server.ts');
writeFileSync(
  healthServer,
  `import { writeFileSync } from 'node:fs';
import { createLogger } from ${JSON.stringify(LOGGER_TS)};
import { startServer } from ${JSON.stringify(SERVER_TS)};
const readyFile = process.argv[process.argv.indexOf('--ready-file') + 1];
const running = await startServer({
  name: 'tiny', port: 0, host: '127.0.0.1', services: [],
  logger: createLogger('tiny', 'silent'), handleSignals: false,
});
process.once('SIGTERM', async () => {
  await running.shutdown(1000);
  process.exit(0);
});
running.setServing();
writeFileSync(readyFile, running.port + '\\n');
`,
);

// Fails at once, after a line on its log.
const failing = join(scratch, 'failing.ts');
writeFileSync(failing, `console.error('bad flag: --nope'); process.exit(3);\n`);
// Runs but never writes its port.
const silent = join(scratch, 'silent.ts');
writeFileSync(silent, 'setTimeout(() => {}, 60_000);\n');

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

test('resolves with an address answering SERVING; stop exits 0 after SIGTERM', async () => {
  const service = await startServiceProcess({
    name: 'tiny',
    command: [process.execPath, healthServer],
    readyFile: join(scratch, 'tiny.port'),
    spawnOptions: { stdio: ['ignore', 'ignore', 'inherit'] },
    timeoutMs: 30_000,
  });
  expect(service.address).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(service.child.spawnargs).toContain('--ready-file');
  expect(await checkHealth(service.address)).toBe('SERVING');

  const stopped = stopServiceProcess(service, 5000);
  expect(stopServiceProcess(service, 5000)).toBe(stopped); // one SIGTERM only
  const exit = await stopped;
  expect(exit).toMatchObject({ code: 0, signal: null });
  expect(exit.elapsedMs).toBeLessThan(5000);
  expect(await service.exited).toEqual({ code: 0, signal: null });
}, 60_000);

test('rejects with the service name, the exit code and the log tail when the child exits', async () => {
  const logPath = join(scratch, 'failing.log');
  const start = startServiceProcess({
    name: 'failing',
    command: [process.execPath, failing],
    readyFile: join(scratch, 'failing.port'),
    spawnOptions: { stdio: ['ignore', 'ignore', openSync(logPath, 'a')] },
    logPath,
    timeoutMs: 30_000,
  });
  await expect(start).rejects.toThrow(/^failing exited during start-up \(code 3\)/);
  await expect(start).rejects.toThrow('bad flag: --nope');
}, 60_000);

test('rejects naming the ready file when no port is written before the deadline', async () => {
  const start = startServiceProcess({
    name: 'silent',
    command: [process.execPath, silent],
    readyFile: join(scratch, 'silent.port'),
    spawnOptions: { stdio: 'ignore' },
    timeoutMs: 300,
  });
  await expect(start).rejects.toThrow(
    /^silent did not write its port to .*silent\.port within 300 ms/,
  );
}, 30_000);
