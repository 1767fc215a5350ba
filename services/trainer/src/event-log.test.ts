import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunEvent } from '@gsil/contracts';
import { EventLog } from './event-log.ts';

function progress(done: number) {
  return { $case: 'progress' as const, value: { phase: 'sample', done, total: 3 } };
}

describe('EventLog', () => {
  test('replays past events, then streams live ones until closed', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gsil-events-')), 'metrics.jsonl');
    const log = new EventLog('run-a', path);
    log.emit(progress(1));
    log.emit(progress(2));

    const seen: RunEvent[] = [];
    const watching = (async () => {
      for await (const event of log.watch()) seen.push(event);
    })();
    // The replayed events are delivered before the live one.
    await Promise.resolve();
    log.emit(progress(3));
    log.close();
    await watching;

    expect(seen.map((e) => e.seq)).toEqual([0, 1, 2]);
    expect(seen.map((e) => (e.event?.$case === 'progress' ? e.event.value.done : -1))).toEqual([
      1, 2, 3,
    ]);
    expect(seen.every((e) => e.runId === 'run-a')).toBe(true);

    // metrics.jsonl holds one proto-JSON event per line, and a new log continues from it.
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[2])).toMatchObject({
      runId: 'run-a',
      seq: 2,
      progress: { phase: 'sample', done: 3, total: 3 },
    });
    const reopened = new EventLog('run-a', path);
    expect(reopened.emit(progress(1)).seq).toBe(3);
  });

  test('a watcher of a closed log gets the history and ends', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gsil-events-')), 'metrics.jsonl');
    const log = new EventLog('run-b', path);
    log.emit(progress(1));
    log.close();
    const seqs: number[] = [];
    for await (const event of log.watch()) seqs.push(event.seq);
    expect(seqs).toEqual([0]);
  });
});
