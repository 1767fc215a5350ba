// Messages between a DecodePool and its worker threads (decode-worker.ts). Everything here
// crosses threads by structured clone: no functions or signals, so cancellation is a
// message too.
import type { Completion, GenerationOptions, GenerationRequest } from './calls.ts';
import type { ExecutionProviderChoice } from './session.ts';

/** workerData of a decode worker. */
export interface WorkerInit {
  /** Path of the exported decoder, or its bytes (copied to each worker). */
  model: string | Uint8Array;
  /** Vocabulary size, when the graph's logits shape does not fix it. */
  vocab?: number;
  executionProvider: ExecutionProviderChoice;
  intraOpThreads: number;
  /** Rows this worker decodes together. */
  maxBatch: number;
}

export type ToWorker =
  | {
      type: 'generate';
      callId: number;
      requests: GenerationRequest[];
      options: Omit<GenerationOptions, 'signal'>;
    }
  | { type: 'cancel'; callId: number }
  | { type: 'close' };

export type ToPool =
  | { type: 'ready'; executionProvider: 'cuda' | 'webgpu' | 'cpu'; fastPath: boolean }
  | { type: 'fatal'; message: string }
  | { type: 'warning'; message: string }
  | { type: 'completion'; callId: number; completion: Completion }
  | { type: 'end'; callId: number }
  | { type: 'failed'; callId: number; message: string }
  | { type: 'tokens'; count: number }
  | { type: 'closed' };
