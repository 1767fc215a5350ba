// Starts a run on the trainer, follows its event stream to the end and writes the run
// folder: metrics.jsonl, summary.json, report.html and model/ (the final policy).
import { appendFileSync, writeFileSync } from 'node:fs';
import { credentials } from '@grpc/grpc-js';
import { type Run, type RunEvent, RunState, TrainerServiceClient } from '@gsil/contracts';
import { pullModelDir } from '@gsil/model-store';
import { RunProgress } from './progress.ts';
import { writeReport } from './report.ts';

export interface WatchOptions {
  /** Aborting it cancels the event stream (the run itself goes on on the trainer). */
  signal?: AbortSignal;
  trainerAddress: string;
  runId: string;
  outDir: string;
  config: Record<string, unknown>;
}

function startRun(client: TrainerServiceClient, runId: string, configJson: string): Promise<Run> {
  return new Promise((resolve, reject) =>
    client.startRun({ runId, configJson }, (error, run) => (error ? reject(error) : resolve(run))),
  );
}

/** The JSON form of an event, as the trainer's own metrics.jsonl writes it. */
function eventJson(event: RunEvent): Record<string, unknown> {
  const { event: body, ...rest } = event;
  return body ? { ...rest, type: body.$case, ...body.value } : rest;
}

export async function watchRunToFolder(options: WatchOptions): Promise<Run> {
  const client = new TrainerServiceClient(options.trainerAddress, credentials.createInsecure());
  const started = await startRun(client, options.runId, JSON.stringify(options.config));
  const events: RunEvent[] = [];
  const progress = new RunProgress(started);
  const metricsFile = `${options.outDir}/metrics.jsonl`;
  writeFileSync(metricsFile, '');

  let finalRun: Run = started;
  await new Promise<void>((resolve, reject) => {
    const stream = client.watchRun({ runId: started.runId });
    options.signal?.addEventListener('abort', () => stream.cancel(), { once: true });
    stream.on('data', (event: RunEvent) => {
      events.push(event);
      appendFileSync(metricsFile, `${JSON.stringify(eventJson(event))}\n`);
      progress.onEvent(event);
      if (event.event?.$case === 'run') finalRun = event.event.value;
    });
    stream.on('error', reject);
    stream.on('end', () => resolve());
  });
  progress.stop();

  const config = JSON.parse(finalRun.configJson || JSON.stringify(options.config));
  writeReport(options.outDir, { run: finalRun, config, events: events.map(eventJson) });
  if (finalRun.state !== RunState.RUN_STATE_SUCCEEDED) {
    client.close();
    throw new Error(`run ${finalRun.runId} ended ${RunState[finalRun.state]}: ${finalRun.error}`);
  }
  if (finalRun.latestModel) {
    await pullModelDir(options.trainerAddress, finalRun.latestModel, `${options.outDir}/model`);
  }
  client.close();
  return finalRun;
}
