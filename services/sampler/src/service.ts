// SamplerService handlers: Generate streams each completion as soon as it finishes;
// GetInfo describes the replica.
//
// Batching: the sequences of one request (prompts x num_samples) share a continuously
// refilled batch of up to maxBatchSize rows. Concurrent requests each run their own batch
// on the shared ONNX Runtime session (whose runs interleave), because the library
// Generator batches within one call only and a request's sampling parameters apply to
// all its rows.
import type { ServerWritableStream } from '@grpc/grpc-js';
import {
  type Completion,
  FinishReason,
  type GenerateRequest,
  type SamplerInfo,
} from '@gsil/contracts';
import type { Completion as GeneratedCompletion, GenerationRequest } from '@gsil/inference';
import type { ModelCache } from '@gsil/model-store';
import type { Logger } from '@gsil/service-kit';
import { callLogger } from '@gsil/service-kit';
import type { Admission } from './admission.ts';
import type { SamplerConfig } from './config.ts';
import type { LoadedModel } from './loaded-model.ts';
import {
  checkModelRef,
  type ResolvedSampling,
  resolveSampling,
  tokenizePrompts,
} from './request.ts';

export interface SamplerState {
  config: SamplerConfig;
  models: ModelCache<LoadedModel>;
  admission: Admission;
  /** Provider found by the start-up self-check; a loaded model's own wins once there is one. */
  executionProvider: string;
  logger: Logger;
  onCompletion?: (completion: Completion) => void;
}

/** One row to generate, remembering its prompt's place in the request. */
interface PromptSample extends GenerationRequest {
  promptIndex: number;
}

/**
 * Splits the rows by how many tokens they may generate: max_new_tokens, but never past
 * the context. Usually there is one group; the library takes one limit per call.
 */
function groupByTokenBudget(
  prompts: number[][],
  sampling: ResolvedSampling,
  contextLength: number,
): Map<number, PromptSample[]> {
  const groups = new Map<number, PromptSample[]>();
  prompts.forEach((promptIds, promptIndex) => {
    const budget = Math.min(sampling.maxNewTokens, contextLength - promptIds.length);
    const group = groups.get(budget) ?? [];
    groups.set(budget, group);
    for (let sampleIndex = 0; sampleIndex < sampling.numSamples; sampleIndex++) {
      // promptKey is the prompt's content, so a sample's random stream depends on
      // (seed, prompt, sample index) only: not on where the prompt sits in the request,
      // which rows share its batch, or how a retried shard was cut.
      group.push({ promptIds, sampleIndex, promptKey: promptIds.join(','), promptIndex });
    }
  });
  return groups;
}

/** Runs the groups concurrently and yields completions from all of them as they finish. */
async function* mergeGroups(
  model: LoadedModel,
  groups: Map<number, PromptSample[]>,
  sampling: ResolvedSampling,
  maxBatch: number,
  signal: AbortSignal,
): AsyncGenerator<{ row: PromptSample; completion: GeneratedCompletion }> {
  const iterators = [...groups].map(([budget, requests]) => {
    const iterator = model.generator.generate(requests, {
      temperature: sampling.temperature,
      topK: sampling.topK,
      topP: sampling.topP,
      maxNewTokens: budget,
      stopTokenIds: sampling.stopTokenIds,
      seed: sampling.seed,
      maxBatch,
      signal,
    });
    return { requests, iterator };
  });
  const pending = new Map(
    iterators.map((it, i) => [i, it.iterator.next().then((result) => ({ i, result }))]),
  );
  try {
    while (pending.size > 0) {
      const { i, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(i);
        continue;
      }
      const { requests, iterator } = iterators[i];
      pending.set(
        i,
        iterator.next().then((next) => ({ i, result: next })),
      );
      yield { row: requests[result.value.requestIndex], completion: result.value };
    }
  } finally {
    // After an abort or an error the other groups' steps reject too; nobody awaits them.
    for (const step of pending.values()) step.catch(() => {});
  }
}

export function samplerImplementation(state: SamplerState) {
  const { config } = state;
  return {
    async generate(call: ServerWritableStream<GenerateRequest, Completion>): Promise<void> {
      const request = call.request;
      const logger = callLogger(call, state.logger);

      // 1. Validate what needs no model, then load (or pull) the version.
      const ref = checkModelRef(request.model);
      const model = await state.models.get(ref);
      const { tokenizer } = model;
      const sampling = resolveSampling(
        request.sampling,
        config,
        tokenizer.vocabSize,
        tokenizer.eosId,
      );
      const prompts = tokenizePrompts(request, tokenizer, model.contextLength);

      // 2. Admission, and cancellation: a client cancel or deadline aborts the rows.
      const release = state.admission.admit(prompts.length * sampling.numSamples);
      const endUse = model.use();
      const abort = new AbortController();
      const onCancel = () => abort.abort(new Error('call cancelled by the client or its deadline'));
      call.on('cancelled', onCancel);
      const startMs = performance.now();
      let completions = 0;
      try {
        const groups = groupByTokenBudget(prompts, sampling, model.contextLength);
        for await (const { row, completion } of mergeGroups(
          model,
          groups,
          sampling,
          config.maxBatchSize,
          abort.signal,
        )) {
          const { promptIndex } = row;
          const stopped = completion.finishReason === 'stop';
          // The text leaves out the stop token that ended generation (EOS or another).
          const textIds = stopped ? completion.tokenIds.slice(0, -1) : completion.tokenIds;
          const message: Completion = {
            promptIndex,
            sampleIndex: completion.sampleIndex,
            tokenIds: completion.tokenIds,
            text: tokenizer.decode(textIds),
            finishReason: stopped
              ? FinishReason.FINISH_REASON_STOP
              : FinishReason.FINISH_REASON_LENGTH,
            tokenLogprobs: completion.tokenLogprobs,
            promptTokenCount: prompts[promptIndex].length,
          };
          state.onCompletion?.(message);
          call.write(message);
          completions++;
        }
      } catch (err) {
        if (abort.signal.aborted) {
          logger.info({ completions }, 'generation stopped: call cancelled');
          return;
        }
        throw err;
      } finally {
        call.off('cancelled', onCancel);
        // Stops any group still running after another failed.
        if (!abort.signal.aborted) abort.abort(new Error('request finished'));
        release();
        endUse();
      }
      logger.info(
        {
          model: `${ref.name}/${ref.version}`,
          prompts: prompts.length,
          completions,
          sampleMs: Math.round(performance.now() - startMs),
        },
        'sample',
      );
    },

    async getInfo(): Promise<SamplerInfo> {
      return {
        loadedModels: state.models.residentRefs().reverse(),
        executionProvider: state.executionProvider,
        intraOpThreads: config.threads,
        maxBatchSize: config.maxBatchSize,
        maxNewTokensLimit: config.maxNewTokensLimit,
        maxSamplesPerPrompt: config.maxSamplesPerPrompt,
      };
    },
  };
}
