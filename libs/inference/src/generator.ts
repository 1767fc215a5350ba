// Batched KV-cache decoding over an exported decoder (Optimum input/output names).
//
// Rows are left-padded: a row's real tokens always sit at the end of the cache, so its
// attention_mask is zeros for its `pad` leading columns and ones after. When a row
// finishes its slot is refilled: queued prompts are prefilled together (without cache)
// and merged into the running batch by padding the shorter cache on the left. Masked
// keys get exactly zero attention weight, so a row's tokens do not depend on its
// batch-mates, and each row draws from its own random stream.
//
// Fast path: given the decode-step graph derived from our own export (decodeStepGraph),
// decode steps run on it with a cache that grows in place (kv-slots.ts) instead of the
// Optimum graph copying the whole cache in and out every step; prefill still runs on the
// Optimum graph, so any graph in that convention works without the fast path.
import * as ort from 'onnxruntime-node';
import {
  arraySource,
  type Completion,
  CompletionStream,
  checkCall,
  type GenerationOptions,
  type GenerationRequest,
  type RowJob,
  type RowSource,
  rowJob,
  withBudget,
} from './calls.ts';
import { KvSlots } from './kv-slots.ts';
import {
  cacheBranchFeed,
  copyKvRows,
  type DecoderLayout,
  decoderLayout,
  emptyPast,
  int64Tensor,
} from './model-io.ts';
import { argmax, argmaxWithLogprob, SequenceRng, sampleToken, tokenLogprob } from './sampling.ts';

interface Row {
  job: RowJob;
  rng: SequenceRng;
  tokens: number[];
  logprobs: number[];
  /** Next input token, not yet in the cache. */
  pending: number;
  /** Position id of `pending`. */
  position: number;
  /** Leading masked cache columns of this row. */
  pad: number;
}

/** The running batch: rows and their caches [rows, kvHeads, length, headDim]. */
interface Batch {
  rows: Row[];
  kv: ort.Tensor[];
  length: number;
}

export class Generator {
  readonly layout: DecoderLayout;

  /**
   * `session` runs a graph in the Optimum convention; `decodeSession`, when given, the
   * decode-step graph derived from the same model (createDecodeSession), used for every
   * one-token step.
   */
  constructor(
    private readonly session: ort.InferenceSession,
    vocab?: number,
    private readonly decodeSession?: ort.InferenceSession,
  ) {
    const meta = session.outputMetadata.find((m) => m.name === 'logits');
    const fromGraph = meta?.isTensor ? Number(meta.shape[2]) : Number.NaN;
    const v = vocab ?? fromGraph;
    if (!(v > 0)) throw new Error('Generator: logits vocab size is symbolic; pass vocab');
    this.layout = decoderLayout(session, v);
  }

  /** Yields each completion as soon as it finishes (not in request order). */
  async *generate(
    requests: GenerationRequest[],
    options: GenerationOptions,
  ): AsyncGenerator<Completion> {
    checkCall(requests, options);
    const stream = new CompletionStream();
    // Ends this call's rows when the caller aborts or stops reading.
    const own = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, own.signal]) : own.signal;
    const jobs = requests.map((request, requestIndex) =>
      rowJob(request, requestIndex, options, signal, stream),
    );
    this.decodeLoop(arraySource(withBudget(jobs)), options.maxBatch ?? 64).then(
      () => stream.close(),
      (error) => stream.fail(error),
    );
    try {
      yield* stream.drain(options.signal);
    } finally {
      own.abort();
    }
  }

  /**
   * Decodes until the source has no waiting jobs and every row finished or was
   * cancelled: rows are prefilled as slots free up, so jobs may join from any caller at
   * any time. A failure of ONNX Runtime rejects the returned promise.
   */
  async decodeLoop(source: RowSource, maxBatch: number): Promise<void> {
    if (this.decodeSession) return this.loopInSlots(this.decodeSession, source, maxBatch);
    let batch: Batch = { rows: [], kv: [], length: 0 };
    while (source.waiting || batch.rows.length > 0) {
      // 1. Drop cancelled rows, then refill free slots by prefilling waiting prompts and
      //    merging their caches.
      const live = liveRows(batch.rows);
      if (live.length < batch.rows.length) batch = this.compact(batch, live);
      if (batch.rows.length < maxBatch && source.waiting) {
        const taken = source.take(maxBatch - batch.rows.length);
        if (taken.length > 0) batch = this.merge(batch, await this.prefill(taken));
      }
      if (batch.rows.length === 0) continue;

      // 2. One decode step for every row.
      const { rows, length } = batch;
      // Filled as int64 directly: converting a number per mask cell cost more than the rest
      // of the step's bookkeeping.
      const mask = new BigInt64Array(rows.length * (length + 1)).fill(1n);
      rows.forEach((row, r) => {
        mask.fill(0n, r * (length + 1), r * (length + 1) + row.pad);
      });
      const feeds: Record<string, ort.Tensor> = {
        input_ids: int64Tensor(
          rows.map((r) => r.pending),
          [rows.length, 1],
        ),
        attention_mask: new ort.Tensor('int64', mask, [rows.length, length + 1]),
        position_ids: int64Tensor(
          rows.map((r) => r.position),
          [rows.length, 1],
        ),
        ...cacheBranchFeed(this.layout, true),
      };
      this.pastNames().forEach((name, i) => {
        feeds[name] = batch.kv[i];
      });
      const out = await this.session.run(feeds);
      const logits = out.logits.data as Float32Array;
      const kv = this.presentNames().map((name) => out[name]);
      const keep: number[] = [];
      rows.forEach((row, r) => {
        if (!this.accept(row, logits, r * this.layout.vocab)) keep.push(r);
      });
      batch = { rows, kv, length: length + 1 };
      if (keep.length < rows.length) batch = this.compact(batch, keep);
    }
  }

  /**
   * Chooses a row's next token from its logits and records it; `logsumexp` (of the row's
   * logits), when the graph gave it, saves computing the log-probability here.
   */
  private accept(row: Row, logits: Float32Array, offset: number, logsumexp?: number): boolean {
    const { options } = row.job;
    const vocab = this.layout.vocab;
    if (options.temperature === 0 && logsumexp === undefined) {
      const choice = argmaxWithLogprob(logits, offset, vocab);
      return this.record(row, choice.token, choice.logprob);
    }
    const token =
      options.temperature === 0
        ? argmax(logits, offset, vocab)
        : sampleToken(logits, offset, vocab, options, row.rng, logsumexp);
    const logprob =
      logsumexp === undefined
        ? tokenLogprob(logits, offset, vocab, token)
        : logits[offset + token] - logsumexp;
    return this.record(row, token, logprob);
  }

  /** Appends a token, emitting the completion when the row is done; returns done. */
  private record(row: Row, token: number, logprob: number): boolean {
    const { options, stop } = row.job;
    row.tokens.push(token);
    row.logprobs.push(logprob);
    const maxNewTokens = row.job.request.maxNewTokens ?? options.maxNewTokens;
    const done = stop.has(token) || row.tokens.length >= maxNewTokens;
    if (done) row.job.emit(toCompletion(row, stop.has(token) ? 'stop' : 'length'));
    row.pending = token;
    row.position++;
    return done;
  }

  /** The fast path's loop: prefill on the Optimum graph, decode steps on the step graph. */
  private async loopInSlots(
    decodeSession: ort.InferenceSession,
    source: RowSource,
    maxBatch: number,
  ): Promise<void> {
    const slots = new KvSlots(this.layout, maxBatch, 1);
    const stepNames = this.kvNames('step');
    const greedyFetches = ['greedy_token', 'greedy_logprob', ...stepNames];
    const sampledFetches = ['logits', 'logsumexp', ...stepNames];
    const vocab = this.layout.vocab;
    const rows: Row[] = []; // by slot
    const ids = new BigInt64Array(maxBatch);
    const positions = new BigInt64Array(maxBatch);
    const free = (slot: number) => {
      const moved = slots.remove(slot);
      if (moved >= 0) rows[slot] = rows[moved];
      rows.length = slots.rows;
    };
    while (source.waiting || slots.rows > 0) {
      // 1. Free cancelled rows' slots (highest first: a moved row is never one to free),
      //    then refill free slots from a prefill of waiting prompts.
      for (let r = slots.rows - 1; r >= 0; r--) if (rows[r].job.signal?.aborted) free(r);
      if (slots.rows < maxBatch && source.waiting) {
        const taken = source.take(maxBatch - slots.rows);
        if (taken.length > 0) {
          const { batch, keep } = await this.prefillAll(taken);
          const present = batch.kv.map((t) => t.data as Float32Array);
          for (const r of keep) {
            rows[slots.add(present, r, batch.length, batch.rows[r].pad)] = batch.rows[r];
          }
        }
      }
      const n = slots.rows;
      if (n === 0) continue;

      // 2. One decode step for every row; the cache grows by one column in place.
      for (let r = 0; r < n; r++) {
        ids[r] = BigInt(rows[r].pending);
        positions[r] = BigInt(rows[r].position);
      }
      // An all-greedy batch needs no logits in JS: the graph gives each row's argmax and
      // its log-probability.
      let greedy = true;
      for (let r = 0; r < n && greedy; r++) greedy = rows[r].job.options.temperature === 0;
      const out = await decodeSession.run(
        {
          input_ids: new ort.Tensor('int64', ids.subarray(0, n), [n, 1]),
          position_ids: new ort.Tensor('int64', positions.subarray(0, n), [n, 1]),
          ...slots.feeds(),
        },
        greedy ? greedyFetches : sampledFetches,
      );
      slots.append(stepNames.map((name) => out[name].data as Float32Array));
      const done: number[] = [];
      if (greedy) {
        const tokens = out.greedy_token.data as BigInt64Array;
        const logprobs = out.greedy_logprob.data as Float32Array;
        for (let r = 0; r < n; r++) {
          if (this.record(rows[r], Number(tokens[r]), logprobs[r])) done.push(r);
        }
      } else {
        const logits = out.logits.data as Float32Array;
        const lse = out.logsumexp.data as Float32Array;
        for (let r = 0; r < n; r++)
          if (this.accept(rows[r], logits, r * vocab, lse[r])) done.push(r);
      }

      // 3. Free finished slots, highest first.
      for (let i = done.length - 1; i >= 0; i--) free(done[i]);
    }
  }

  private pastNames(): string[] {
    return this.kvNames('past_key_values');
  }

  private presentNames(): string[] {
    return this.kvNames('present');
  }

  private kvNames(prefix: string): string[] {
    const names: string[] = [];
    for (let i = 0; i < this.layout.layers; i++)
      names.push(`${prefix}.${i}.key`, `${prefix}.${i}.value`);
    return names;
  }

  /** prefillAll, keeping only the rows that go on. */
  private async prefill(taken: RowJob[]): Promise<Batch> {
    const { batch, keep } = await this.prefillAll(taken);
    return keep.length < batch.rows.length ? this.compact(batch, keep) : batch;
  }

  /**
   * Runs the prompts left-padded without cache and samples each row's first token;
   * `keep` lists the rows that did not finish with it.
   */
  private async prefillAll(taken: RowJob[]): Promise<{ batch: Batch; keep: number[] }> {
    const length = Math.max(...taken.map((t) => t.request.promptIds.length));
    const n = taken.length;
    const ids = new Array<number>(n * length).fill(0);
    const mask = new Array<number>(n * length).fill(0);
    const positions = new Array<number>(n * length).fill(0);
    const rows: Row[] = taken.map((job, r) => {
      const { request, requestIndex } = job;
      const pad = length - request.promptIds.length;
      request.promptIds.forEach((id, j) => {
        ids[r * length + pad + j] = id;
        mask[r * length + pad + j] = 1;
        positions[r * length + pad + j] = j;
      });
      const sampleIndex = request.sampleIndex ?? 0;
      return {
        job,
        rng: new SequenceRng(job.options.seed ?? 0, request.promptKey ?? requestIndex, sampleIndex),
        tokens: [],
        logprobs: [],
        pending: 0,
        position: request.promptIds.length - 1,
        pad,
      };
    });
    const out = await this.session.run({
      input_ids: int64Tensor(ids, [n, length]),
      attention_mask: int64Tensor(mask, [n, length]),
      position_ids: int64Tensor(positions, [n, length]),
      ...emptyPast(this.layout, n),
    });
    const logits = out.logits.data as Float32Array;
    const vocab = this.layout.vocab;
    const keep: number[] = [];
    rows.forEach((row, r) => {
      if (!this.accept(row, logits, (r * length + length - 1) * vocab)) keep.push(r);
    });
    return { batch: { rows, kv: this.presentNames().map((name) => out[name]), length }, keep };
  }

  /** Joins two batches, left-padding the shorter cache. */
  private merge(a: Batch, b: Batch): Batch {
    if (a.rows.length === 0) return b;
    if (b.rows.length === 0) return a;
    const { kvHeads, headDim } = this.layout;
    const length = Math.max(a.length, b.length);
    const total = a.rows.length + b.rows.length;
    const kv = a.kv.map((ta, i) => {
      const dst = new Float32Array(total * kvHeads * length * headDim);
      const shiftA = length - a.length;
      const shiftB = length - b.length;
      copyKvRows(
        ta.data as Float32Array,
        a.length,
        range(a.rows.length),
        dst,
        length,
        0,
        kvHeads,
        headDim,
        shiftA,
      );
      copyKvRows(
        b.kv[i].data as Float32Array,
        b.length,
        range(b.rows.length),
        dst,
        length,
        a.rows.length,
        kvHeads,
        headDim,
        shiftB,
      );
      return new ort.Tensor('float32', dst, [total, kvHeads, length, headDim]);
    });
    for (const row of a.rows) row.pad += length - a.length;
    for (const row of b.rows) row.pad += length - b.length;
    return { rows: [...a.rows, ...b.rows], kv, length };
  }

  /** Keeps only rows `keep`, dropping cache columns that every kept row masks. */
  private compact(batch: Batch, keep: number[]): Batch {
    const rows = keep.map((r) => batch.rows[r]);
    if (rows.length === 0) return { rows: [], kv: [], length: 0 };
    const { kvHeads, headDim } = this.layout;
    const trim = Math.min(...rows.map((r) => r.pad));
    const length = batch.length - trim;
    const kv = batch.kv.map((t) => {
      const dst = new Float32Array(rows.length * kvHeads * length * headDim);
      copyKvRows(
        t.data as Float32Array,
        batch.length,
        keep,
        dst,
        length,
        0,
        kvHeads,
        headDim,
        -trim,
      );
      return new ort.Tensor('float32', dst, [rows.length, kvHeads, length, headDim]);
    });
    for (const row of rows) row.pad -= trim;
    return { rows, kv, length };
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function toCompletion(row: Row, finishReason: 'stop' | 'length'): Completion {
  return {
    requestIndex: row.job.requestIndex,
    sampleIndex: row.job.request.sampleIndex ?? 0,
    tokenIds: row.tokens,
    tokenLogprobs: row.logprobs,
    logprob: row.logprobs.reduce((s, x) => s + x, 0),
    finishReason,
  };
}

/** Indices of the rows whose job was not cancelled. */
function liveRows(rows: Row[]): number[] {
  const live: number[] = [];
  rows.forEach((row, r) => {
    if (!row.job.signal?.aborted) live.push(r);
  });
  return live;
}
