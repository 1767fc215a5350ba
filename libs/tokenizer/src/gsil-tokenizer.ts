// The project's tokenizer: a tokenizer.json run by @huggingface/tokenizers, with the
// project's convention that a prompt is [BOS] + encode(text) and a response is
// encode(text) + [EOS].

import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

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

  /** `tokenizerJson`: the tokenizer.json document, as text or parsed. */
  constructor(tokenizerJson: string | Record<string, unknown>, source = 'tokenizer.json') {
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
    this.bosId = id('<s>');
    this.eosId = id('</s>');
  }

  static fromFile(path: string): GsilTokenizer {
    return new GsilTokenizer(readFileSync(path, 'utf8'), path);
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
