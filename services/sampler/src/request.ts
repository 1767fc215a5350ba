// Turns a GenerateRequest into validated token sequences and sampling parameters. Every
// rejection is INVALID_ARGUMENT with the request field named, so a caller can fix it.
import type { GenerateRequest, ModelRef, SamplingParams } from '@gsil/contracts';
import { GsilError, Status } from '@gsil/service-kit';
import type { GsilTokenizer } from '@gsil/tokenizer';
import type { SamplerConfig } from './config.ts';

/** The parts of the configuration that bound a request. */
export type RequestLimits = Pick<
  SamplerConfig,
  'maxNewTokens' | 'maxNewTokensLimit' | 'maxSamplesPerPrompt'
>;

export interface ResolvedSampling {
  /** 0 means greedy. */
  temperature: number;
  /** 1 means no nucleus truncation. */
  topP: number;
  /** 0 means no top-k truncation. */
  topK: number;
  maxNewTokens: number;
  numSamples: number;
  seed: number;
  /** The request's stop tokens plus the model's EOS. */
  stopTokenIds: number[];
}

/** INVALID_ARGUMENT reading "<field>: <problem>", e.g. "prompts[3]: 600 tokens exceed ...". */
export function invalidField(field: string, problem: string): GsilError {
  return new GsilError(Status.INVALID_ARGUMENT, `${field}: ${problem}`);
}

/** Checks model.name and model.version before anything is loaded. */
export function checkModelRef(model: ModelRef | undefined): ModelRef {
  if (!model?.name) throw invalidField('model.name', 'is required (e.g. "stories260k")');
  if (!model.version) throw invalidField('model.version', 'is required (e.g. "base")');
  return model;
}

/** Resolves the zero-means-default fields of SamplingParams and checks each against the limits. */
export function resolveSampling(
  sampling: SamplingParams | undefined,
  limits: RequestLimits,
  vocabSize: number,
  eosId: number,
): ResolvedSampling {
  const temperature = sampling?.temperature ?? 0;
  if (!Number.isFinite(temperature) || temperature < 0) {
    throw invalidField(
      'sampling.temperature',
      `${temperature} is not a finite number >= 0 (0 means greedy)`,
    );
  }
  const topP = sampling?.topP || 1;
  if (!(topP > 0 && topP <= 1)) {
    throw invalidField(
      'sampling.top_p',
      `${topP} is outside [0, 1] (0 or 1 disable nucleus sampling)`,
    );
  }
  const topK = sampling?.topK ?? 0;
  if (topK < 0) throw invalidField('sampling.top_k', `${topK} is negative (0 disables top-k)`);

  const maxNewTokens = sampling?.maxNewTokens || limits.maxNewTokens;
  if (maxNewTokens < 0) {
    throw invalidField(
      'sampling.max_new_tokens',
      `${maxNewTokens} is negative (0 means ${limits.maxNewTokens})`,
    );
  }
  if (maxNewTokens > limits.maxNewTokensLimit) {
    throw invalidField(
      'sampling.max_new_tokens',
      `${maxNewTokens} exceeds this sampler's limit of ${limits.maxNewTokensLimit} (0 means ${limits.maxNewTokens})`,
    );
  }
  const numSamples = sampling?.numSamples || 1;
  if (numSamples < 0) {
    throw invalidField('sampling.num_samples', `${numSamples} is negative (0 means 1)`);
  }
  if (numSamples > limits.maxSamplesPerPrompt) {
    throw invalidField(
      'sampling.num_samples',
      `${numSamples} exceeds this sampler's limit of ${limits.maxSamplesPerPrompt} samples per prompt`,
    );
  }

  const stopTokenIds = [...(sampling?.stopTokenIds ?? [])];
  stopTokenIds.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw invalidField(
        `sampling.stop_token_ids[${i}]`,
        `${id} is not a token id of this model (0 to ${vocabSize - 1})`,
      );
    }
  });
  if (!stopTokenIds.includes(eosId)) stopTokenIds.push(eosId);
  return {
    temperature,
    topP,
    topK,
    maxNewTokens,
    numSamples,
    seed: sampling?.seed ?? 0,
    stopTokenIds,
  };
}

/**
 * Token ids of every prompt: text gets [BOS] + encode(text), tokens are used as given. A
 * prompt must leave room for at least one generated token within the context.
 */
export function tokenizePrompts(
  request: Pick<GenerateRequest, 'prompts'>,
  tokenizer: GsilTokenizer,
  contextLength: number,
): number[][] {
  if (request.prompts.length === 0) {
    throw invalidField('prompts', 'is empty; give at least one prompt');
  }
  return request.prompts.map((prompt, i) => {
    const field = `prompts[${i}]`;
    const value = prompt.value;
    if (!value) throw invalidField(field, 'has neither text nor tokens');
    let ids: number[];
    if (value.$case === 'text') {
      ids = tokenizer.encodePrompt(value.value);
    } else {
      ids = value.value.ids;
      if (ids.length === 0) throw invalidField(`${field}.tokens.ids`, 'is empty');
      ids.forEach((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize) {
          throw invalidField(
            `${field}.tokens.ids[${j}]`,
            `${id} is not a token id of this model (0 to ${tokenizer.vocabSize - 1})`,
          );
        }
      });
    }
    if (ids.length >= contextLength) {
      throw invalidField(
        field,
        `${ids.length} tokens exceed the context of ${contextLength} (at most ${contextLength - 1} leave room to generate)`,
      );
    }
    return ids;
  });
}
