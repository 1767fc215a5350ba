// `gsil report <run folder>`: redraws summary.json and report.html from metrics.jsonl,
// e.g. after a run on a remote trainer or with a newer version of the report.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Run } from '@gsil/contracts';
import { writeReport } from '../local/report.ts';

export async function reportCommand(runDir: string): Promise<void> {
  const file = join(runDir, 'metrics.jsonl');
  const lines = readFileSync(file, 'utf8').split('\n');
  const events: Array<Record<string, unknown> & { type?: string }> = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      events.push(JSON.parse(line));
    } catch (error) {
      // A run killed mid-write leaves a cut-off last line: report what came before it.
      if (lines.slice(i + 1).every((rest) => rest.trim() === '')) {
        process.stderr.write(`gsil: ${file}:${i + 1}: cut-off last line ignored\n`);
        return;
      }
      throw new Error(`${file}:${i + 1}: not JSON (${(error as Error).message})`);
    }
  });
  const runEvents = events.filter((e) => e.type === 'run');
  if (runEvents.length === 0) throw new Error(`${file}: no run event; is this a run folder?`);
  const { type: _type, seq: _seq, timeUnixMs: _time, ...run } = runEvents.at(-1)!;
  const config = JSON.parse(String(run.configJson || '{}'));
  writeReport(runDir, { run: run as unknown as Run, config, events });
  process.stderr.write(`gsil: wrote ${join(runDir, 'report.html')} and summary.json\n`);
}
