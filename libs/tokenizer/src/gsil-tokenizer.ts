// The project's tokenizer: a tokenizer.json run by @huggingface/tokenizers, with the
// project's convention that a prompt is [BOS] + encode(text) and a response is
// encode(text) + [EOS].

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

/** BOS and EOS ids where the vocabulary's "<s>" and "</s>" are not them. */
export interface SpecialTokenIds {
  bosId?: number;
  eosId?: number;
  /** Where the ids come from, for errors (e.g. the config.json path). */
  from?: string;
}

/** A config.json token id field: absent or null, one id, or a list whose first is used. */
function firstId(value: unknown, file: string, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  if (typeof first !== 'number') {
    throw new Error(
      `${file}: ${field} must be a token id or a list of them, got ${JSON.stringify(value)}`,
    );
  }
  return first;
}

interface TokenizerJson {
  added_tokens?: Array<{ id: number; content: string; special?: boolean }>;
  normalizer?: { normalizers?: Array<{ pattern?: { Regex?: string } }> } | null;
  model?: { vocab?: Record<string, number> };
}

// Llama's tokenizer_config: decoded text keeps its spaces ("= ?" stays "= ?").
const TOKENIZER_CONFIG = { clean_up_tokenization_spaces: false };

export class GsilTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly vocabSize: number;
  private readonly tokenizer: Tokenizer;
  private readonly specialIds: Set<number>;
  private readonly trimsSpaces: boolean;

  /**
   * `tokenizerJson`: the tokenizer.json document, as text or parsed. `special` gives the BOS
   * and EOS ids (a model's config.json has them); without it they are the ids of "<s>" and
   * "</s>", as in Llama's sentencepiece vocabularies.
   */
  constructor(
    tokenizerJson: string | Record<string, unknown>,
    source = 'tokenizer.json',
    special: SpecialTokenIds = {},
  ) {
    const json = (
      typeof tokenizerJson === 'string' ? JSON.parse(tokenizerJson) : tokenizerJson
    ) as TokenizerJson;
    const vocab = json.model?.vocab;
    if (!vocab) throw new Error(`${source}: no model.vocab in tokenizer.json`);
    // sentencepiece encodes "<s>" in text as the characters, never as BOS; so the encoder
    // matches no added tokens, and decode drops the special ids itself.
    this.tokenizer = new Tokenizer({ ...json, added_tokens: [] }, TOKENIZER_CONFIG);
    this.specialIds = new Set((json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
    this.trimsSpaces = (json.normalizer?.normalizers ?? []).some(
      (n) => n.pattern?.Regex === '\\A +| +\\z',
    );
    this.vocabSize = Object.keys(vocab).length;
    const id = (token: string): number => {
      const found = vocab[token];
      if (found === undefined) throw new Error(`${source}: vocabulary has no ${token} token`);
      return found;
    };
    const ids = Math.max(this.vocabSize, ...(json.added_tokens ?? []).map((t) => t.id + 1));
    const checked = (value: number | undefined, field: string, fallback: string): number => {
      if (value === undefined) return id(fallback);
      if (!(Number.isInteger(value) && value >= 0 && value < ids)) {
        throw new Error(
          `${special.from ?? source}: ${field} ${value} is not one of the ${ids} token ids ` +
            `of ${source}`,
        );
      }
      return value;
    };
    this.bosId = checked(special.bosId, 'bos_token_id', '<s>');
    this.eosId = checked(special.eosId, 'eos_token_id', '</s>');
  }

  static fromFile(path: string, special: SpecialTokenIds = {}): GsilTokenizer {
    return new GsilTokenizer(readFileSync(path, 'utf8'), path, special);
  }

  /**
   * The tokenizer of a model folder: its tokenizer.json, with BOS and EOS from config.json's
   * bos_token_id and eos_token_id where it sets them (the first, where eos_token_id lists
   * several).
   */
  static fromModelDir(dir: string): GsilTokenizer {
    const configPath = join(dir, 'config.json');
    let special: SpecialTokenIds = {};
    if (existsSync(configPath)) {
      const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      special = {
        bosId: firstId(config.bos_token_id, configPath, 'bos_token_id'),
        eosId: firstId(config.eos_token_id, configPath, 'eos_token_id'),
        from: configPath,
      };
    }
    return GsilTokenizer.fromFile(join(dir, 'tokenizer.json'), special);
  }

  /** sentencepiece ids of `text`, with the dummy leading space, without BOS or EOS. */
  encode(text: string): number[] {
    // tokenizers.js prepends the dummy '▁' even to text trimmed to nothing; sentencepiece
    // and the Rust tokenizers return no ids.
    if (this.trimsSpaces && /^ *$/.test(text)) return [];
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** Text of `ids`; BOS, EOS and other special tokens are left out. */
  decode(ids: number[]): string {
    const kept = ids.filter((id) => !this.specialIds.has(id));
    // The library refuses an empty list; its text is the empty string.
    if (kept.length === 0) return '';
    return this.tokenizer.decode(kept, TOKENIZER_CONFIG);
  }

  /** [BOS, ...encode(text)]. */
  encodePrompt(text: string): number[] {
    return [this.bosId, ...this.encode(text)];
  }

  /** [...encode(text), EOS]. */
  encodeResponse(text: string): number[] {
    return [...this.encode(text), this.eosId];
  }
}
