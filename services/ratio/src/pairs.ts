// Turns the request's (prompt, response) pairs into token ids, checked against the model:
// text is tokenized exactly as the trainer does (prompt = [BOS] + ids, response = ids +
// [EOS]); token ids are used as given. Every problem is an INVALID_ARGUMENT that names the
// pair index and field, e.g. "pairs[2].response: empty", so a caller can fix its data.

import type { ScoringPair, TextOrTokens } from '@gsil/contracts';
import { GsilError, Status } from '@gsil/service-kit';

/** What a pair needs from the model it is scored with. */
export interface PairLimits {
  vocabSize: number;
  /** Context length in tokens (max_position_embeddings). */
  maxSequenceTokens: number;
}

/** The subset of GsilTokenizer used here. */
export interface PairTokenizer {
  encodePrompt(text: string): number[];
  encodeResponse(text: string): number[];
}

export interface TokenizedPair {
  promptIds: number[];
  responseIds: number[];
}

function badPair(field: string, problem: string): GsilError {
  return new GsilError(Status.INVALID_ARGUMENT, `${field}: ${problem}`);
}

function tokenize(
  value: TextOrTokens | undefined,
  field: string,
  encode: (text: string) => number[],
): number[] {
  const content = value?.value;
  if (!content) throw badPair(field, 'missing (set text or tokens)');
  if (content.$case === 'tokens') return content.value.ids;
  // An empty text response would score only EOS; treat it as the data bug it usually is.
  if (content.value === '' && field.endsWith('.response')) return [];
  return encode(content.value);
}

function checkVocabulary(ids: number[], field: string, vocabSize: number): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw badPair(`${field}.tokens[${i}]`, `${id} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}

/** Tokenizes and checks every pair; throws INVALID_ARGUMENT for the first bad one. */
export function tokenizePairs(
  pairs: ScoringPair[],
  tokenizer: PairTokenizer,
  limits: PairLimits,
): TokenizedPair[] {
  return pairs.map((pair, index) => {
    const field = `pairs[${index}]`;
    const promptIds = tokenize(pair.prompt, `${field}.prompt`, (t) => tokenizer.encodePrompt(t));
    const responseIds = tokenize(pair.response, `${field}.response`, (t) =>
      tokenizer.encodeResponse(t),
    );

    // The first response token is predicted from the last prompt token, so a prompt needs
    // at least one token (BOS for text prompts).
    if (promptIds.length === 0) {
      throw badPair(`${field}.prompt`, 'empty (needs at least one token, e.g. BOS)');
    }
    if (responseIds.length === 0) throw badPair(`${field}.response`, 'empty');
    checkVocabulary(promptIds, `${field}.prompt`, limits.vocabSize);
    checkVocabulary(responseIds, `${field}.response`, limits.vocabSize);

    const total = promptIds.length + responseIds.length;
    if (total > limits.maxSequenceTokens) {
      throw badPair(
        field,
        `${total} tokens (prompt ${promptIds.length} + response ${responseIds.length}) ` +
          `exceed the model context of ${limits.maxSequenceTokens}`,
      );
    }
    return { promptIds, responseIds };
  });
}
