// The TrainerService handlers: thin adapters from gRPC to the RunManager and ModelStore.

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
import { checkModelRef, streamModelDir } from '@gsil/model-store';
import { invalidArgument } from '@gsil/service-kit';
import type { ModelStore } from './model-store.ts';
import type { RunManager } from './run-manager.ts';

function requireRunId(runId: string): string {
  if (!runId) throw invalidArgument('run_id', 'is required');
  return runId;
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
      streamModelDir(store.resolve(checkModelRef(call.request.model)), call),

    listModels: async (): Promise<ListModelsResponse> => ({ models: store.list() }),
  };
}
