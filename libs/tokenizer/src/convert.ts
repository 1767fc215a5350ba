// Builds a Hugging Face tokenizer.json that reproduces a sentencepiece BPE model with byte
// fallback, the way transformers' LlamaConverter does, plus sentencepiece's whitespace
// cleanup (tok512 keeps remove_extra_whitespaces on, Llama's own model turns it off).

import {
  PieceType,
  readSentencePieceVocab,
  type SentencePieceVocab,
} from './sentencepiece-model.ts';

const SPACE_SYMBOL = '▁';

/** Reads `tok512.model` or llama2.c's `tok512.bin` and returns the tokenizer.json document. */
export function llama2cVocabToTokenizerJson(vocabPath: string): Record<string, unknown> {
  return sentencePieceToTokenizerJson(readSentencePieceVocab(vocabPath), vocabPath);
}

export function sentencePieceToTokenizerJson(
  spm: SentencePieceVocab,
  source: string,
): Record<string, unknown> {
  if (spm.modelType !== 2) {
    throw new Error(`${source}: sentencepiece model_type ${spm.modelType} is not BPE (2)`);
  }
  const vocab: Record<string, number> = {};
  spm.pieces.forEach((p, id) => {
    vocab[p.piece] = id;
  });
  const unk = spm.pieces.find((p) => p.type === PieceType.Unknown)?.piece ?? '<unk>';
  const special = spm.pieces
    .map((p, id) => ({ p, id }))
    .filter(({ p }) => p.type === PieceType.Control || p.type === PieceType.Unknown);
  const bos = special.find(({ p }) => p.piece === '<s>');

  const normalizers: unknown[] = [];
  if (spm.removeExtraWhitespaces) {
    // sentencepiece trims spaces at both ends of the text (absolute anchors: Oniguruma's ^
    // and $ match at every line) and collapses runs of them, U+0020 only.
    normalizers.push(
      { type: 'Replace', pattern: { Regex: '\\A +| +\\z' }, content: '' },
      { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
    );
  }
  if (spm.addDummyPrefix) normalizers.push({ type: 'Prepend', prepend: SPACE_SYMBOL });
  normalizers.push({ type: 'Replace', pattern: { String: ' ' }, content: SPACE_SYMBOL });

  const decoders: unknown[] = [
    { type: 'Replace', pattern: { String: SPACE_SYMBOL }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
  ];
  if (spm.addDummyPrefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map(({ p, id }) => ({
      id,
      content: p.piece,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: 'Sequence', normalizers },
    pre_tokenizer: null,
    // As Llama's tokenizer.json: with special tokens on, a sequence starts with BOS.
    post_processor: bos
      ? {
          type: 'TemplateProcessing',
          single: [
            { SpecialToken: { id: '<s>', type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
          ],
          pair: [
            { SpecialToken: { id: '<s>', type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { SpecialToken: { id: '<s>', type_id: 1 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { '<s>': { id: '<s>', ids: [bos.id], tokens: ['<s>'] } },
        }
      : null,
    decoder: { type: 'Sequence', decoders },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: bpeMerges(spm),
    },
  };
}

/**
 * sentencepiece BPE merges the adjacent pair whose concatenation is the highest-scoring
 * piece; its scores fall with the id, so merge rank follows the merged piece's id. Every
 * split of a piece into two known pieces is a merge, ranked as transformers'
 * SentencePieceExtractor ranks them (merged id, then left id, then right id).
 */
function bpeMerges(spm: SentencePieceVocab): Array<[string, string]> {
  const ids = new Map<string, number>();
  spm.pieces.forEach((p, id) => {
    if (p.type === PieceType.Normal || p.type === PieceType.UserDefined) ids.set(p.piece, id);
  });
  const ranked: Array<[number, number, number, string, string]> = [];
  for (const [piece, id] of ids) {
    const chars = Array.from(piece);
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      const leftId = ids.get(left);
      const rightId = ids.get(right);
      if (leftId !== undefined && rightId !== undefined) {
        ranked.push([spm.pieces[id].score, leftId, rightId, left, right]);
      }
    }
  }
  ranked.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
  return ranked.map(([, , , left, right]) => [left, right]);
}
