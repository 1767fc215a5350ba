// Generation spread over worker threads, each with its own ONNX Runtime sessions and
// continuously refilled batch (decode-worker.ts). ONNX Runtime runs a pass synchronously on
// the thread that calls it, and a decode step of a small model is hundreds of tiny
// operators that intra-op threads cannot split well, so the way to use several cores is
// several batches decoding at once. The caller's thread only routes rows and completions,
// so a server on it answers health checks and streams results while the workers decode.
//
// A row's tokens depend only on (seed, prompt key, sample index) and its settings, never on
// its batch-mates, so which worker decodes it does not change what it gets: a request
// without a promptKey is keyed by its index in the caller's call, as Generator keys it.
import { Worker } from 'node:worker_threads';
import {
  type Completion,
  CompletionStream,
  checkCall,
  type GenerationOptions,
  type GenerationRequest,
} from './calls.ts';
import type { ToPool, ToWorker, WorkerInit } from './decode-protocol.ts';
import type { ExecutionProviderChoice } from './session.ts';

export interface DecodePoolOptions {
  /** Worker threads, each decoding its share of the rows on one core. Default 1. */
  workers?: number;
  /** Rows decoded together across all workers, split evenly between them. Default 64. */
  maxBatch?: number;
  /** Default 'auto': CUDA when its library is installed, else CPU. */
  executionProvider?: ExecutionProviderChoice;
  /** ONNX Runtime intra-op threads of each worker's sessions. Default 1. */
  intraOpThreads?: number;
  /** Vocabulary size, when the graph's logits shape does not fix it. */
  vocab?: number;
  /** Receives provider fallback warnings; defaults to console.warn. */
  warn?: (message: string) => void;
  /** Told how many tokens the workers generated, including rows later cancelled. */
  onTokens?: (count: number) => void;
}

/** A worker's share of one generate() call. */
interface SubCall {
  lane: Lane;
  stream: CompletionStream;
  /** Request index in the caller's call, by index in this share. */
  requestIndexes: number[];
  /** Rows of this share still decoding or waiting in the worker. */
  rowsLeft: number;
  /** Called once the share ended, however it ended. */
  settle: () => void;
}

interface Lane {
  worker: Worker;
  /** Rows handed to the worker and not yet completed or cancelled. */
  rows: number;
  ready: Promise<Extract<ToPool, { type: 'ready' }>>;
  /** The worker exited or could not open its sessions; it gets no more rows. */
  dead?: boolean;
  closed?: () => void;
}

const CLOSE_TIMEOUT_MS = 5_000;

export class DecodePool {
  readonly maxBatch: number;
  private readonly lanes: Lane[] = [];
  private readonly calls = new Map<number, SubCall>();
  private nextCallId = 1;
  private closing = false;
  private readonly warn: (message: string) => void;
  private provider: 'cuda' | 'webgpu' | 'cpu' = 'cpu';
  private decodeStep = false;

  private constructor(
    private readonly init: Omit<WorkerInit, 'maxBatch'>,
    private readonly workerCount: number,
    maxBatch: number,
    private readonly options: DecodePoolOptions,
  ) {
    this.maxBatch = maxBatch;
    this.warn = options.warn ?? ((message) => console.warn(message));
  }

  /** The provider the workers' sessions run on (a CUDA request may have fallen back). */
  get executionProvider(): 'cuda' | 'webgpu' | 'cpu' {
    return this.provider;
  }

  /** Whether decode steps run on the one-token graph (the model is our own export). */
  get fastPath(): boolean {
    return this.decodeStep;
  }

  /** Starts the workers and resolves once every one has opened its sessions. */
  static async start(
    model: string | Uint8Array,
    options: DecodePoolOptions = {},
  ): Promise<DecodePool> {
    const workers = options.workers ?? 1;
    const maxBatch = options.maxBatch ?? 64;
    if (!(Number.isInteger(workers) && workers >= 1)) {
      throw new Error(`DecodePool: workers must be a whole number >= 1, got ${workers}`);
    }
    if (maxBatch < workers) {
      throw new Error(`DecodePool: maxBatch ${maxBatch} is smaller than workers ${workers}`);
    }
    const init = {
      model,
      vocab: options.vocab,
      executionProvider: options.executionProvider ?? 'auto',
      intraOpThreads: options.intraOpThreads ?? 1,
    };
    const pool = new DecodePool(init, workers, maxBatch, options);
    for (let i = 0; i < workers; i++) pool.lanes.push(pool.spawn(i));
    try {
      const [first] = await Promise.all(pool.lanes.map((lane) => lane.ready));
      pool.provider = first.executionProvider;
      pool.decodeStep = first.fastPath;
      return pool;
    } catch (error) {
      await pool.close();
      throw error;
    }
  }

  /** Worker threads decoding. */
  get workers(): number {
    return this.lanes.length;
  }

  /** Rows handed to the workers and not yet finished (running or waiting for a slot). */
  get activeRows(): number {
    return this.lanes.reduce((sum, lane) => sum + lane.rows, 0);
  }

  private spawn(index: number): Lane {
    const workers = this.workerCount;
    // maxBatch split evenly: the first maxBatch % workers workers take one row more.
    const share = Math.floor(this.maxBatch / workers) + (index < this.maxBatch % workers ? 1 : 0);
    const worker = new Worker(new URL('./decode-worker.ts', import.meta.url), {
      workerData: { ...this.init, maxBatch: share } satisfies WorkerInit,
    });
    let resolveReady: (message: Extract<ToPool, { type: 'ready' }>) => void = () => {};
    let rejectReady: (error: Error) => void = () => {};
    const ready = new Promise<Extract<ToPool, { type: 'ready' }>>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    // Callers that never await ready (a replacement lane) must not see an unhandled rejection.
    ready.catch(() => {});
    const lane: Lane = { worker, rows: 0, ready };
    worker.on('message', (message: ToPool) => {
      switch (message.type) {
        case 'ready':
          resolveReady(message);
          break;
        case 'fatal':
          // The sessions did not open: nothing this worker was given will run.
          lane.dead = true;
          rejectReady(new Error(message.message));
          failCalls(message.message);
          break;
        case 'warning':
          this.warn(message.message);
          break;
        case 'tokens':
          this.options.onTokens?.(message.count);
          break;
        case 'completion':
          this.onCompletion(message.callId, message.completion);
          break;
        case 'end':
          this.calls.get(message.callId)?.settle();
          break;
        case 'failed':
          this.calls.get(message.callId)?.stream.fail(new Error(message.message));
          this.calls.get(message.callId)?.settle();
          break;
        case 'closed':
          lane.closed?.();
          break;
      }
    });
    const failCalls = (why: string) => {
      for (const call of [...this.calls.values()]) {
        if (call.lane !== lane) continue;
        call.stream.fail(new Error(`decode worker ${index} ${why}; its rows were lost`));
        call.settle();
      }
    };
    const lost = (why: string) => {
      if (lane.dead) return;
      lane.dead = true;
      rejectReady(new Error(`decode worker ${index} ${why}`));
      failCalls(why);
      lane.closed?.();
      // Replace a worker that died under load, so one crash does not halve the pool.
      const at = this.lanes.indexOf(lane);
      if (!this.closing && at >= 0) this.lanes[at] = this.spawn(index);
    };
    worker.on('error', (error) => lost(`failed: ${error.message}`));
    worker.on('exit', (code) => {
      if (!this.closing) lost(`exited with code ${code}`);
    });
    return lane;
  }

  private onCompletion(callId: number, completion: Completion): void {
    const call = this.calls.get(callId);
    if (!call) return;
    call.rowsLeft--;
    call.lane.rows--;
    call.stream.push({
      ...completion,
      requestIndex: call.requestIndexes[completion.requestIndex],
    });
  }

  /**
   * Like Generator.generate: yields each completion as soon as it finishes (not in request
   * order). The rows are spread over the workers, least loaded first, and share each
   * worker's running batch with other calls; options.maxBatch is ignored.
   */
  async *generate(
    requests: GenerationRequest[],
    options: GenerationOptions,
  ): AsyncGenerator<Completion> {
    checkCall(requests, options);
    if (this.closing) throw new Error('DecodePool: generate after close');
    if (requests.length === 0) return;
    const stream = new CompletionStream();
    const { signal, ...sendable } = options;
    const shares = this.split(requests);
    let open = shares.length;
    const ids: number[] = [];
    for (const [lane, indexes] of shares) {
      const callId = this.nextCallId++;
      ids.push(callId);
      const call: SubCall = {
        lane,
        stream,
        requestIndexes: indexes,
        rowsLeft: indexes.length,
        settle: () => {
          if (!this.calls.delete(callId)) return;
          lane.rows -= call.rowsLeft;
          call.rowsLeft = 0;
          if (--open === 0) stream.close();
        },
      };
      this.calls.set(callId, call);
      lane.rows += indexes.length;
      this.post(lane, {
        type: 'generate',
        callId,
        requests: indexes.map((i) => ({ ...requests[i], promptKey: requests[i].promptKey ?? i })),
        options: sendable,
      });
    }
    try {
      yield* stream.drain(signal);
    } finally {
      // Ended early (abort, error, or the caller stopped reading): free the workers' rows.
      for (const callId of ids) {
        const call = this.calls.get(callId);
        if (!call) continue;
        this.post(call.lane, { type: 'cancel', callId });
        call.settle();
      }
    }
  }

  /** Request indexes per lane: each request to the lane with the fewest rows so far. */
  private split(requests: GenerationRequest[]): Array<[Lane, number[]]> {
    if (this.lanes.every((lane) => lane.dead)) {
      throw new Error('DecodePool: no decode worker is running (see the earlier errors)');
    }
    const load = this.lanes.map((lane) => (lane.dead ? Number.POSITIVE_INFINITY : lane.rows));
    const shares = this.lanes.map(() => [] as number[]);
    requests.forEach((_, i) => {
      let best = 0;
      for (let l = 1; l < load.length; l++) if (load[l] < load[best]) best = l;
      shares[best].push(i);
      load[best]++;
    });
    return this.lanes
      .map((lane, l) => [lane, shares[l]] as [Lane, number[]])
      .filter(([, share]) => share.length > 0);
  }

  private post(lane: Lane, message: ToWorker): void {
    lane.worker.postMessage(message);
  }

  /** Stops every call and worker; sessions are released before the threads end. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const call of [...this.calls.values()]) {
      call.stream.fail(new Error('DecodePool closed'));
      call.settle();
    }
    await Promise.all(
      this.lanes.map(async (lane) => {
        const closed = new Promise<void>((resolve) => {
          lane.closed = resolve;
          setTimeout(resolve, CLOSE_TIMEOUT_MS).unref();
        });
        lane.worker.postMessage({ type: 'close' } satisfies ToWorker);
        await closed;
        await lane.worker.terminate();
      }),
    );
  }
}
