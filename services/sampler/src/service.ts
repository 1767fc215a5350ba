// SamplerService handlers: Generate streams each completion as soon as it finishes;
// GetInfo describes the replica.
//
// Batching: the sequences of every request for a model version (prompts x num_samples)
// share continuously refilled batches of up to maxBatchSize rows in all, one per decode
// worker thread (DecodePool), so several trainer shards in flight fill them while this
// thread keeps serving. Each row keeps its own sampling
// settings and random stream, so results do not depend on what else is decoding; a
// cancelled request's rows leave the batch.
import type { ServerWritableStream } from '@grpc/grpc-js';
import {
  type Completion,
  FinishReason,
  type GenerateRequest,
  type SamplerInfo,
} from '@gsil/contracts';
import type { GenerationRequest } from '@gsil/inference';
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
  executionProvider: 'unknown' | 'cuda' | 'webgpu' | 'cpu';
  logger: Logger;
  onCompletion?: (completion: Completion) => void;
}

/** One row to generate, remembering its prompt's place in the request. */
interface PromptSample extends GenerationRequest {
  promptIndex: number;
}

/**
 * The request's rows, prompts x samples, each with its own token budget: max_new_tokens,
 * but never past the context.
 */
function promptSamples(
  prompts: number[][],
  sampling: ResolvedSampling,
  contextLength: number,
): PromptSample[] {
  return prompts.flatMap((promptIds, promptIndex) =>
    Array.from({ length: sampling.numSamples }, (_, sampleIndex) => ({
      promptIds,
      sampleIndex,
      // promptKey is the prompt's content, so a sample's random stream depends on
      // (seed, prompt, sample index) only: not on where the prompt sits in the request,
      // which rows share its batch, or how a retried shard was cut.
      promptKey: promptIds.join(','),
      promptIndex,
      maxNewTokens: Math.min(sampling.maxNewTokens, contextLength - promptIds.length),
    })),
  );
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
        const rows = promptSamples(prompts, sampling, model.contextLength);
        for await (const completion of model.batcher.generate(rows, {
          temperature: sampling.temperature,
          topK: sampling.topK,
          topP: sampling.topP,
          maxNewTokens: sampling.maxNewTokens,
          stopTokenIds: sampling.stopTokenIds,
          seed: sampling.seed,
          signal: abort.signal,
        })) {
          const row = rows[completion.requestIndex];
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
        // Removes this request's rows from the shared batch if it ended early.
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
        decodeWorkers: config.decodeWorkers,
      };
    },
  };
}
