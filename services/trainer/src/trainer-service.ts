// The TrainerService handlers: thin adapters from gRPC to the RunManager and ModelStore.

import { createHash } from 'node:crypto';
import { openSync, readdirSync, readFileSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerWritableStream } from '@grpc/grpc-js';
import type {
  CancelRunRequest,
  ExportModelRequest,
  FileChunk,
  GetRunRequest,
  ListModelsResponse,
  ListRunsResponse,
  Run,
  RunEvent,
  StartRunRequest,
  WatchRunRequest,
} from '@gsil/contracts';
import { invalidArgument } from '@gsil/service-kit';
import { COMPLETE_MARKER, checkModelRef, type ModelStore } from './model-store.ts';
import type { RunManager } from './run-manager.ts';

/** FileChunk.data is at most 1 MiB (common.proto). */
const CHUNK_BYTES = 1024 * 1024;

function requireRunId(runId: string): string {
  if (!runId) throw invalidArgument('run_id', 'is required');
  return runId;
}

/** Streams each file of a model folder as sha256-stamped chunks, in name order. */
export async function streamModelFolder(
  dir: string,
  call: ServerWritableStream<ExportModelRequest, FileChunk>,
): Promise<void> {
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name !== COMPLETE_MARKER)
    .map((e) => e.name)
    .sort();
  for (const name of files) {
    const path = join(dir, name);
    const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
    const totalSize = statSync(path).size;
    const fd = openSync(path, 'r');
    try {
      let offset = 0;
      do {
        const buffer = Buffer.alloc(Math.min(CHUNK_BYTES, totalSize - offset));
        readSync(fd, buffer, 0, buffer.length, offset);
        const ok = call.write({ path: name, offset, data: buffer, totalSize, sha256 });
        offset += buffer.length;
        // Respect back-pressure: a large model.onnx must not pile up in memory.
        if (!ok) await new Promise((resolve) => call.once('drain', resolve));
        if (call.cancelled) return;
      } while (offset < totalSize);
    } finally {
      closeSync(fd);
    }
  }
}

export function trainerServiceImplementation(runs: RunManager, store: ModelStore) {
  return {
    startRun: async (call: { request: StartRunRequest }): Promise<Run> =>
      runs.start(call.request.runId, call.request.configJson),

    getRun: async (call: { request: GetRunRequest }): Promise<Run> =>
      runs.get(requireRunId(call.request.runId)),

    listRuns: async (): Promise<ListRunsResponse> => ({ runs: runs.list() }),

    cancelRun: async (call: { request: CancelRunRequest }): Promise<Run> =>
      runs.cancel(requireRunId(call.request.runId)),

    watchRun: async (call: ServerWritableStream<WatchRunRequest, RunEvent>): Promise<void> => {
      const events = runs.watch(requireRunId(call.request.runId));
      const stop = () => void events.return(undefined);
      call.on('cancelled', stop);
      for await (const event of events) {
        if (call.cancelled) break;
        if (!call.write(event)) await new Promise((resolve) => call.once('drain', resolve));
      }
      call.off('cancelled', stop);
    },

    exportModel: async (call: ServerWritableStream<ExportModelRequest, FileChunk>) =>
      streamModelFolder(store.resolve(checkModelRef(call.request.model)), call),

    listModels: async (): Promise<ListModelsResponse> => ({ models: store.list() }),
  };
}
