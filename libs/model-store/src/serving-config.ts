// What serving reads from any decoder's config.json, whatever its architecture: the width of
// its logits and its context length, which architectures name differently.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServingConfig {
  /** Width of the logits (vocab_size). */
  vocabSize: number;
  /** Tokens of prompt plus completion the model can attend to. */
  contextLength: number;
}

/**
 * config.json fields that hold the context length, first found wins: Llama, Mistral, Qwen2 and
 * most others; GPT-2 (n_positions, n_ctx); MPT; ChatGLM.
 */
export const CONTEXT_LENGTH_FIELDS = [
  'max_position_embeddings',
  'n_positions',
  'n_ctx',
  'max_seq_len',
  'seq_length',
] as const;

/** The serving fields of a parsed config.json; throws naming `source` and the field. */
export function servingConfig(config: Record<string, unknown>, source: string): ServingConfig {
  const positive = (value: unknown) =>
    typeof value === 'number' && Number.isInteger(value) && value > 0;
  if (!positive(config.vocab_size)) {
    throw new Error(
      `${source}: vocab_size must be a positive integer, got ${JSON.stringify(config.vocab_size)}`,
    );
  }
  const field = CONTEXT_LENGTH_FIELDS.find((name) => config[name] !== undefined);
  if (!field) {
    throw new Error(
      `${source}: no context length (looked for ${CONTEXT_LENGTH_FIELDS.join(', ')})`,
    );
  }
  if (!positive(config[field])) {
    throw new Error(
      `${source}: ${field} must be a positive integer, got ${JSON.stringify(config[field])}`,
    );
  }
  return { vocabSize: config.vocab_size as number, contextLength: config[field] as number };
}

/** servingConfig of `<dir>/config.json`. */
export function readServingConfig(dir: string): ServingConfig {
  const path = join(dir, 'config.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${path}: not a JSON object`);
  }
  return servingConfig(parsed as Record<string, unknown>, path);
}
