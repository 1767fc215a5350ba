// Continuous batching across calls: every generate() call on one batcher feeds the same
// running batch (up to maxBatch rows), so several concurrent requests fill one batch
// instead of each decoding its own small one. Rows are independent of their batch-mates
// (masked keys get zero weight; each row has its own random stream and settings), so a
// call gets the same tokens whoever else is decoding. A call's completions stream back
// as its rows finish; aborting a call removes only its rows.
import {
  type Completion,
  CompletionStream,
  checkCall,
  type GenerationOptions,
  type GenerationRequest,
  queueSource,
  type RowJob,
  rowJob,
  withBudget,
} from './calls.ts';
import type { Generator } from './generator.ts';

export class ContinuousBatcher {
  /** Jobs waiting for a slot, in arrival order. */
  private readonly waiting: RowJob[] = [];
  private running: Promise<void> | null = null;
  /** Streams of the calls whose rows the running loop holds, failed together on an error. */
  private readonly streams = new Set<CompletionStream>();

  constructor(
    private readonly generator: Generator,
    /** Most rows decoded together, across all calls. */
    readonly maxBatch: number,
  ) {}

  /**
   * Resolves once no decoding loop runs. Releasing the sessions before that could free
   * one under a pass already scheduled (onnxruntime-node defers each run to setImmediate).
   */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Like Generator.generate, but sharing the running batch; options.maxBatch is ignored. */
  async *generate(
    requests: GenerationRequest[],
    options: GenerationOptions,
  ): AsyncGenerator<Completion> {
    checkCall(requests, options);
    if (requests.length === 0) return;
    const stream = new CompletionStream();
    const own = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, own.signal]) : own.signal;
    const jobs = requests.map((request, requestIndex) =>
      rowJob(request, requestIndex, options, signal, stream),
    );
    let left = jobs.length;
    for (const job of jobs) {
      const emit = job.emit;
      job.emit = (completion) => {
        emit(completion);
        if (--left === 0) stream.close();
      };
    }
    this.streams.add(stream);
    this.waiting.push(...withBudget(jobs));
    this.start();
    try {
      yield* stream.drain(options.signal);
    } finally {
      own.abort();
      this.streams.delete(stream);
    }
  }

  private start(): void {
    if (this.running || this.waiting.length === 0) return;
    const source = queueSource(this.waiting);
    this.running = this.generator
      .decodeLoop(source, this.maxBatch)
      .catch((error) => {
        // The loop's rows are lost with it: fail every call that had rows in it.
        for (const stream of this.streams) stream.fail(error);
        this.waiting.length = 0;
      })
      .finally(() => {
        this.running = null;
        // Jobs that arrived after the loop's last look at the queue.
        this.start();
      });
  }
}
