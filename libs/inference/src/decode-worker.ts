// One decoding thread of a DecodePool: its own ONNX Runtime sessions on the model, and a
// ContinuousBatcher that all calls routed to this thread share. ONNX Runtime runs a pass
// synchronously on the calling thread, so each worker keeps one core busy while the
// pool's owner (a gRPC server, the CLI) stays responsive.
import { parentPort, workerData } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import type { GenerationOptions } from './calls.ts';
import { ContinuousBatcher } from './continuous-batcher.ts';
import type { ToPool, ToWorker, WorkerInit } from './decode-protocol.ts';
import { Generator } from './generator.ts';
import { createDecodeSession, createSession } from './session.ts';

const port = parentPort;
if (!port) throw new Error('decode-worker.ts runs only as a worker thread of DecodePool');
const post = (message: ToPool) => port.postMessage(message);

/** Generated tokens not yet reported; flushed at most every TOKEN_REPORT_MS. */
let unreportedTokens = 0;
let reportScheduled = false;
const TOKEN_REPORT_MS = 100;

function countTokens(count: number): void {
  unreportedTokens += count;
  if (reportScheduled) return;
  reportScheduled = true;
  setTimeout(reportTokens, TOKEN_REPORT_MS);
}

/** Reports the tokens counted so far (before each completion, so counts never trail it). */
function reportTokens(): void {
  reportScheduled = false;
  if (unreportedTokens === 0) return;
  post({ type: 'tokens', count: unreportedTokens });
  unreportedTokens = 0;
}

/** Every pass (prefill or decode step) yields the next token of each input_ids row. */
function counted(session: ort.InferenceSession): ort.InferenceSession {
  const run = session.run.bind(session) as (...args: unknown[]) => Promise<unknown>;
  return new Proxy(session, {
    get(target, key, receiver) {
      if (key !== 'run') return Reflect.get(target, key, receiver);
      return async (feeds: Record<string, ort.Tensor>, ...rest: unknown[]) => {
        const result = await run(feeds, ...rest);
        countTokens(Number(feeds.input_ids?.dims[0] ?? 0));
        return result;
      };
    },
  });
}

async function open(init: WorkerInit) {
  const warn = (message: string) => post({ type: 'warning', message });
  const created = await createSession(init.model, {
    executionProvider: init.executionProvider,
    intraOpThreads: init.intraOpThreads,
    warn,
  });
  const decode = await createDecodeSession(init.model, {
    executionProvider: created.executionProvider,
    intraOpThreads: init.intraOpThreads,
    warn,
  });
  const generator = new Generator(counted(created.session), init.vocab, decode && counted(decode));
  return {
    batcher: new ContinuousBatcher(generator, init.maxBatch),
    executionProvider: created.executionProvider,
    fastPath: decode !== undefined,
    release: () => Promise.all([created.session.release(), decode?.release()]),
  };
}

/** Controllers of the calls this worker holds, registered as their message arrives. */
const calls = new Map<number, AbortController>();
const opened = open(workerData as WorkerInit);
opened.then(
  (model) =>
    post({ type: 'ready', executionProvider: model.executionProvider, fastPath: model.fastPath }),
  (error) => post({ type: 'fatal', message: messageOf(error) }),
);

port.on('message', async (message: ToWorker) => {
  if (message.type === 'cancel') {
    calls.get(message.callId)?.abort();
    return;
  }
  // Registered before any await, so that a cancel arriving while the sessions still open
  // finds the call.
  const controller = new AbortController();
  if (message.type === 'generate') calls.set(message.callId, controller);
  // A worker whose sessions failed to open has reported it; it only waits to be closed.
  const model = await opened.catch(() => null);
  if (message.type === 'close') {
    // Aborted rows leave the loop after its current pass; only then are the sessions freed.
    for (const call of calls.values()) call.abort();
    await model?.batcher.idle();
    await model?.release();
    post({ type: 'closed' });
    return;
  }
  const { callId, requests, options } = message;
  try {
    if (!model || controller.signal.aborted) return;
    const withSignal: GenerationOptions = { ...options, signal: controller.signal };
    for await (const completion of model.batcher.generate(requests, withSignal)) {
      reportTokens();
      post({ type: 'completion', callId, completion });
    }
    post({ type: 'end', callId });
  } catch (error) {
    if (!controller.signal.aborted) post({ type: 'failed', callId, message: messageOf(error) });
  } finally {
    calls.delete(callId);
  }
});

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
