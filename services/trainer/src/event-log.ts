// The events of one run: appended to runs/<runId>/metrics.jsonl (one RunEvent as proto JSON
// per line) and fanned out in process, so WatchRun can replay what happened and then follow
// live events until the run ends.

import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { RunEvent } from '@gsil/contracts';

export type RunEventBody = NonNullable<RunEvent['event']>;

type Listener = (event: RunEvent) => void;

export class EventLog {
  private readonly events: RunEvent[] = [];
  private readonly listeners = new Set<Listener>();
  private closed = false;
  private readonly closeListeners = new Set<() => void>();

  /**
   * @param metricsPath runs/<runId>/metrics.jsonl; events already there (an earlier life of
   *   the run, before a restart) are loaded so replay and sequence numbers continue.
   */
  constructor(
    readonly runId: string,
    private readonly metricsPath: string,
  ) {
    if (existsSync(metricsPath)) {
      for (const line of readFileSync(metricsPath, 'utf8').split('\n')) {
        if (line.trim() === '') continue;
        try {
          this.events.push(RunEvent.fromJSON(JSON.parse(line)));
        } catch {
          // A line cut short by a crash mid-write: the events before it still count.
        }
      }
    }
  }

  get size(): number {
    return this.events.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Records an event, stamping run id, time and the next sequence number. */
  emit(body: RunEventBody): RunEvent {
    const event: RunEvent = {
      runId: this.runId,
      timeUnixMs: Date.now(),
      seq: this.events.length,
      event: body,
    };
    this.events.push(event);
    appendFileSync(this.metricsPath, `${JSON.stringify(RunEvent.toJSON(event))}\n`);
    for (const listener of this.listeners) listener(event);
    return event;
  }

  /** All events so far, oldest first. */
  history(): readonly RunEvent[] {
    return this.events;
  }

  /** Marks the run finished: watchers drain and end. Reopened when a run resumes. */
  close(): void {
    this.closed = true;
    for (const listener of this.closeListeners) listener();
  }

  reopen(): void {
    this.closed = false;
  }

  /**
   * Past events, then live ones, ending when the log is closed or `signal` aborts. Events
   * arriving while the consumer is busy are queued, never dropped.
   */
  async *watch(signal?: AbortSignal): AsyncGenerator<RunEvent> {
    const queue: RunEvent[] = [...this.events];
    let wake: (() => void) | undefined;
    const onEvent: Listener = (event) => {
      queue.push(event);
      wake?.();
    };
    const onEnd = () => wake?.();
    this.listeners.add(onEvent);
    this.closeListeners.add(onEnd);
    signal?.addEventListener('abort', onEnd);
    try {
      while (!signal?.aborted) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.closed) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      this.listeners.delete(onEvent);
      this.closeListeners.delete(onEnd);
      signal?.removeEventListener('abort', onEnd);
    }
  }
}
