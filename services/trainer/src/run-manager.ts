// The runs a trainer owns: one folder each under runsRoot (config.json, metrics.jsonl,
// checkpoints/), their state, cancellation and event streams. What a run *does* is the
// executor's business (pipeline.ts); this file only keeps the books.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ModelRef, type Run, type RunEvent, RunState } from '@gsil/contracts';
import { parseRunConfig, type RunConfig } from '@gsil/run-config';
import {
  failedPrecondition,
  GsilError,
  invalidArgument,
  type Logger,
  notFound,
  Status,
} from '@gsil/service-kit';
import { EventLog, type RunEventBody } from './event-log.ts';

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const CONFIG_FILE = 'config.json';
export const METRICS_FILE = 'metrics.jsonl';

/** What the executor of a run gets: its folder, config, event log and cancellation. */
export interface RunContext {
  runId: string;
  runDir: string;
  config: RunConfig;
  signal: AbortSignal;
  logger: Logger;
  /** Global optimizer step reached before this start (non-zero when resuming). */
  initialStep: number;
  emit(body: RunEventBody): void;
  /** Updates stage, iteration, step, latest model or backend; emits the new Run state. */
  update(
    fields: Partial<Pick<Run, 'stage' | 'iteration' | 'step' | 'latestModel' | 'backend'>>,
  ): void;
}

export type RunExecutor = (context: RunContext) => Promise<void>;

interface RunHandle {
  run: Run;
  log: EventLog;
  controller?: AbortController;
  done?: Promise<void>;
}

function isFinished(state: RunState): boolean {
  return (
    state === RunState.RUN_STATE_SUCCEEDED ||
    state === RunState.RUN_STATE_FAILED ||
    state === RunState.RUN_STATE_CANCELLED
  );
}

function newRunId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `run-${stamp}-${randomBytes(2).toString('hex')}`;
}

export class RunManager {
  private readonly runs = new Map<string, RunHandle>();

  constructor(
    readonly runsRoot: string,
    private readonly execute: RunExecutor,
    private readonly logger: Logger,
  ) {
    mkdirSync(runsRoot, { recursive: true });
  }

  /**
   * Starts a new run, or resumes the run whose folder already exists (its stored config is
   * used; a config given with it must equal the stored one, except for where the sampler
   * and ratio replicas are: services restarted for the resume have new addresses). A run
   * already running or finished successfully is returned as it is.
   */
  start(runIdRequested: string, configJson: string): Run {
    const runId = runIdRequested || newRunId();
    if (!RUN_ID.test(runId)) {
      throw invalidArgument('run_id', `must match ${RUN_ID}; got ${JSON.stringify(runId)}`);
    }
    const runDir = resolve(this.runsRoot, runId);
    const configPath = join(runDir, CONFIG_FILE);
    let config: RunConfig;
    if (existsSync(configPath)) {
      const stored = parseRunConfig(readFileSync(configPath, 'utf8'));
      config = stored;
      if (configJson.trim() !== '') {
        const given = parseRunConfig(configJson);
        if (JSON.stringify(withoutReplicas(given)) !== JSON.stringify(withoutReplicas(stored))) {
          throw failedPrecondition(
            `run ${runId} exists with a different config (${configPath}); start it with the ` +
              'same config (or an empty config_json) to resume it, or choose another run_id',
          );
        }
        config = {
          ...stored,
          samplerAddresses: given.samplerAddresses,
          ratioAddresses: given.ratioAddresses,
        };
      }
    } else {
      config = parseRunConfig(configJson);
      mkdirSync(runDir, { recursive: true });
      writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
    }

    const handle = this.handleOf(runId);
    const state = handle.run.state;
    if (state === RunState.RUN_STATE_RUNNING || state === RunState.RUN_STATE_SUCCEEDED) {
      return handle.run;
    }
    this.launch(handle, config);
    return handle.run;
  }

  get(runId: string): Run {
    return this.handleOf(runId).run;
  }

  list(): Run[] {
    const ids = readdirSync(this.runsRoot, { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(join(this.runsRoot, e.name, CONFIG_FILE)))
      .map((e) => e.name)
      .sort();
    return ids.map((id) => this.get(id));
  }

  /** Aborts the run's in-flight work; resolves to its state once it has stopped. */
  async cancel(runId: string): Promise<Run> {
    const handle = this.handleOf(runId);
    if (isFinished(handle.run.state) || !handle.controller) return handle.run;
    handle.controller.abort(new GsilError(Status.CANCELLED, `run ${runId} cancelled`));
    await handle.done;
    return handle.run;
  }

  watch(runId: string, signal?: AbortSignal): AsyncGenerator<RunEvent> {
    return this.handleOf(runId).log.watch(signal);
  }

  /** Cancels every running run (server shutdown) and waits for them to stop. */
  async close(): Promise<void> {
    await Promise.all([...this.runs.keys()].map((id) => this.cancel(id)));
  }

  /** Waits for a run's executor to finish (tests, `gsil run`). */
  async wait(runId: string): Promise<Run> {
    const handle = this.handleOf(runId);
    await handle.done;
    return handle.run;
  }

  private handleOf(runId: string): RunHandle {
    const known = this.runs.get(runId);
    if (known) return known;
    const runDir = resolve(this.runsRoot, runId);
    if (!RUN_ID.test(runId) || !existsSync(join(runDir, CONFIG_FILE))) {
      throw notFound(`run ${JSON.stringify(runId)} not found in ${this.runsRoot}`);
    }
    // A run from an earlier life of the trainer: its last Run event is its state.
    const log = new EventLog(runId, join(runDir, METRICS_FILE));
    let run: Run | undefined;
    for (const event of log.history()) if (event.event?.$case === 'run') run = event.event.value;
    run ??= {
      runId,
      state: RunState.RUN_STATE_PENDING,
      runDir,
      configJson: readFileSync(join(runDir, CONFIG_FILE), 'utf8'),
      stage: '',
      iteration: 0,
      step: 0,
      error: '',
      latestModel: undefined,
      startedUnixMs: 0,
      finishedUnixMs: 0,
      backend: '',
    };
    // A run that was RUNNING when its trainer died is not running now.
    if (!isFinished(run.state)) run = { ...run, state: RunState.RUN_STATE_PENDING };
    log.close();
    const handle: RunHandle = { run, log };
    this.runs.set(runId, handle);
    return handle;
  }

  private launch(handle: RunHandle, config: RunConfig): void {
    const { runId, runDir } = handle.run;
    const controller = new AbortController();
    const logger = this.logger.child({ runId });
    handle.controller = controller;
    handle.log.reopen();
    const setRun = (fields: Partial<Run>) => {
      handle.run = { ...handle.run, ...fields };
      handle.log.emit({ $case: 'run', value: handle.run });
    };
    setRun({
      state: RunState.RUN_STATE_RUNNING,
      configJson: JSON.stringify(config),
      error: '',
      startedUnixMs: Date.now(),
      finishedUnixMs: 0,
      // Chosen anew by each start (the resumed trainer may have another binding).
      backend: '',
    });
    const context: RunContext = {
      runId,
      runDir,
      config,
      signal: controller.signal,
      logger,
      initialStep: handle.run.step,
      emit: (body) => handle.log.emit(body),
      update: (fields) => setRun(fields),
    };
    handle.done = this.execute(context)
      .then(
        () => setRun({ state: RunState.RUN_STATE_SUCCEEDED, finishedUnixMs: Date.now() }),
        (err: unknown) => {
          const cancelled = controller.signal.aborted;
          const message = err instanceof Error ? err.message : String(err);
          if (cancelled) logger.info('run cancelled');
          else logger.error({ err }, 'run failed');
          setRun({
            state: cancelled ? RunState.RUN_STATE_CANCELLED : RunState.RUN_STATE_FAILED,
            error: cancelled ? '' : message,
            finishedUnixMs: Date.now(),
          });
        },
      )
      .finally(() => {
        handle.controller = undefined;
        handle.log.close();
      });
  }
}

export type { ModelRef };

/** The config without the replica addresses, which may change between a run and its resume. */
function withoutReplicas(
  config: RunConfig,
): Omit<RunConfig, 'samplerAddresses' | 'ratioAddresses'> {
  const { samplerAddresses: _s, ratioAddresses: _r, ...rest } = config;
  return rest;
}
