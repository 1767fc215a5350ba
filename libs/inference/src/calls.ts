// The plumbing of generate() calls, shared by Generator, ContinuousBatcher and DecodePool:
// what a call asks and gets back, the row jobs it becomes, where a decoding loop takes them
// from, and the stream that hands completions back to the caller.
import type { SamplingParams } from './sampling.ts';

export interface GenerationRequest {
  promptIds: number[];
  /** Which of several samples for the same prompt this is (seeds its stream). Default 0. */
  sampleIndex?: number;
  /** This row's token budget, overriding GenerationOptions.maxNewTokens. */
  maxNewTokens?: number;
  /** Stable key of the prompt for the random stream; defaults to the request's index. */
  promptKey?: string | number;
}

export interface GenerationOptions extends SamplingParams {
  maxNewTokens: number;
  /** Generation ends after emitting one of these (it is included in tokenIds). */
  stopTokenIds?: number[];
  /** Base seed of every row's random stream. Default 0. */
  seed?: number;
  /** Most rows decoded together. Default 64. */
  maxBatch?: number;
  signal?: AbortSignal;
}

export interface Completion {
  /** Index of the request in the array passed to generate(). */
  requestIndex: number;
  sampleIndex: number;
  /** Generated tokens, ending with the stop token when one ended generation. */
  tokenIds: number[];
  /** log p(token) under the model at temperature 1, one per generated token. */
  tokenLogprobs: number[];
  /** Sum of tokenLogprobs. */
  logprob: number;
  finishReason: 'stop' | 'length';
}

/**
 * One sequence to generate with its own settings, as the decoding loop takes it: rows of
 * different calls (different sampling settings, seeds, budgets) can share a batch.
 */
export interface RowJob {
  request: GenerationRequest;
  requestIndex: number;
  options: GenerationOptions;
  stop: Set<number>;
  /** Receives the completion. */
  emit: (completion: Completion) => void;
  /** The row leaves the batch, without a completion, once this is aborted. */
  signal?: AbortSignal;
}

/** Where the decoding loop takes new rows from; it may grow while the loop runs. */
export interface RowSource {
  /** Removes and returns up to `n` waiting jobs (skipping cancelled ones). */
  take(n: number): RowJob[];
  /** Whether jobs are waiting. */
  readonly waiting: boolean;
}

export function emptyCompletion(requestIndex: number, sampleIndex: number): Completion {
  return {
    requestIndex,
    sampleIndex,
    tokenIds: [],
    tokenLogprobs: [],
    logprob: 0,
    finishReason: 'length',
  };
}

/** What every generate() refuses before taking any row: empty prompts, an aborted call. */
export function checkCall(requests: GenerationRequest[], options: GenerationOptions): void {
  for (const request of requests) {
    if (request.promptIds.length === 0) throw new Error('generate: a prompt has no tokens');
  }
  options.signal?.throwIfAborted();
}

/** A job per request of one generate() call, emitting into `stream`. */
export function rowJob(
  request: GenerationRequest,
  requestIndex: number,
  options: GenerationOptions,
  signal: AbortSignal | undefined,
  stream: CompletionStream,
): RowJob {
  const job: RowJob = {
    request,
    requestIndex,
    options,
    stop: new Set(options.stopTokenIds ?? []),
    emit: (completion) => stream.push(completion),
    signal,
  };
  return job;
}

/** The jobs with tokens to generate; the others complete empty at once. */
export function withBudget(jobs: RowJob[]): RowJob[] {
  return jobs.filter((job) => {
    if ((job.request.maxNewTokens ?? job.options.maxNewTokens) > 0) return true;
    job.emit(emptyCompletion(job.requestIndex, job.request.sampleIndex ?? 0));
    return false;
  });
}

/** A source over a fixed list of jobs. */
export function arraySource(jobs: RowJob[]): RowSource {
  return queueSource([...jobs]);
}

/**
 * A source that takes jobs from the front of `queue`, which the caller may keep appending
 * to (the continuous batcher's waiting list); jobs aborted while waiting are dropped.
 */
export function queueSource(queue: RowJob[]): RowSource {
  return {
    take(n) {
      const taken: RowJob[] = [];
      while (taken.length < n && queue.length > 0) {
        const job = queue.shift() as RowJob;
        if (!job.signal?.aborted) taken.push(job);
      }
      return taken;
    },
    get waiting() {
      return queue.length > 0;
    },
  };
}

/**
 * Completions of one caller, pushed by the decoding loop and read as an async iterator;
 * ends when closed, throws when the loop failed or the caller's signal aborted.
 */
export class CompletionStream {
  private buffered: Completion[] = [];
  private ended = false;
  private error: unknown;
  private wake: (() => void) | null = null;

  push(completion: Completion): void {
    this.buffered.push(completion);
    this.notify();
  }

  close(): void {
    this.ended = true;
    this.notify();
  }

  fail(error: unknown): void {
    this.error ??= error ?? new Error('generation failed');
    this.close();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  async *drain(signal?: AbortSignal): AsyncGenerator<Completion> {
    const onAbort = () => this.fail(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (true) {
        if (this.error !== undefined) throw this.error;
        if (this.buffered.length > 0) {
          yield* this.buffered.splice(0);
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
