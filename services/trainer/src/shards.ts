// Runs the shards of one phase (sampling or scoring) across service replicas: at most
// `maxInFlight` requests at once, replicas taken round-robin, and a shard that fails with a
// transient status retried on the next replica. Requests carry ids derived from the shard,
// so a retry (or a duplicate that the first replica finished after all) is harmless.

import { status } from '@grpc/grpc-js';
import { GsilError, isServiceError } from '@gsil/service-kit';

/** Statuses that say "this replica, now" rather than "this request": worth another replica. */
const RETRYABLE = new Set<number>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

export function isRetryable(err: unknown): boolean {
  const code = isServiceError(err) || err instanceof GsilError ? err.code : undefined;
  return code !== undefined && RETRYABLE.has(code);
}

function cancelled(reason: unknown): GsilError {
  if (reason instanceof GsilError) return reason;
  const message = reason instanceof Error ? reason.message : 'cancelled';
  return new GsilError(status.CANCELLED, message, reason);
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

export interface ShardOptions {
  /** Number of replicas; `call` receives an index in [0, replicaCount). */
  replicaCount: number;
  maxInFlight: number;
  /** Attempts per shard, each on the next replica, before the whole phase fails. */
  attempts: number;
  /**
   * Wait before the first retry of a shard, doubled for each further one: a replica that is
   * restarting, or a channel in reconnect backoff, needs a moment. Default 0.
   */
  retryDelayMs?: number;
  signal?: AbortSignal;
}

export interface ShardAttempt {
  shardIndex: number;
  replicaIndex: number;
  /** 0 for the first try. */
  attempt: number;
  signal: AbortSignal;
}

/**
 * Calls `call` once per shard (retrying as above) and resolves with the results in shard
 * order. `onDone` sees each result as it arrives, so the next phase (scoring) can start on a
 * shard while others are still being sampled. The first non-retryable failure aborts the
 * shards still in flight and rejects.
 */
export async function runShards<S, R>(
  shards: readonly S[],
  options: ShardOptions,
  call: (shard: S, attempt: ShardAttempt) => Promise<R>,
  onDone?: (result: R, shardIndex: number) => void | Promise<void>,
): Promise<R[]> {
  const results = new Array<R>(shards.length);
  const inner = new AbortController();
  const abortInner = () => inner.abort(options.signal?.reason);
  if (options.signal?.aborted) abortInner();
  options.signal?.addEventListener('abort', abortInner);
  let nextShard = 0;
  let nextReplica = 0;

  const runOne = async (shardIndex: number) => {
    let lastError: unknown;
    // Shards start on replicas in turn; a retry moves to the following replica, so it never
    // lands on the one that just failed (unless there is only one).
    const firstReplica = nextReplica;
    nextReplica = (nextReplica + 1) % options.replicaCount;
    for (let attempt = 0; attempt < options.attempts; attempt++) {
      const replicaIndex = (firstReplica + attempt) % options.replicaCount;
      if (attempt > 0 && options.retryDelayMs) {
        await abortableSleep(options.retryDelayMs * 2 ** (attempt - 1), inner.signal);
      }
      if (inner.signal.aborted) throw cancelled(inner.signal.reason);
      try {
        const result = await call(shards[shardIndex], {
          shardIndex,
          replicaIndex,
          attempt,
          signal: inner.signal,
        });
        results[shardIndex] = result;
        await onDone?.(result, shardIndex);
        return;
      } catch (err) {
        lastError = err;
        if (!isRetryable(err) || inner.signal.aborted) throw err;
      }
    }
    throw lastError;
  };

  // Each worker pulls the next shard when its previous one is done: a bounded pool.
  const worker = async () => {
    while (nextShard < shards.length) {
      const shardIndex = nextShard++;
      await runOne(shardIndex);
    }
  };
  const workerCount = Math.min(options.maxInFlight, shards.length);
  try {
    await Promise.all(
      Array.from({ length: workerCount }, () =>
        worker().catch((err) => {
          inner.abort(err);
          throw err;
        }),
      ),
    );
  } finally {
    options.signal?.removeEventListener('abort', abortInner);
  }
  return results;
}

/** Splits `items` into consecutive chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}
