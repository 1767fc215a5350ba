// Reads the vocabulary of a sentencepiece model, from either of the two files llama2.c
// ships: the sentencepiece protobuf (`tok512.model`) or llama2.c's own export (`tok512.bin`).

import { readFileSync } from 'node:fs';

/** sentencepiece's ModelProto.SentencePiece.Type. */
export enum PieceType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

export interface SentencePiece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface SentencePieceVocab {
  pieces: SentencePiece[];
  /** NormalizerSpec.add_dummy_prefix (default true). */
  addDummyPrefix: boolean;
  /** NormalizerSpec.remove_extra_whitespaces (default true). */
  removeExtraWhitespaces: boolean;
  /** TrainerSpec.model_type: 1 unigram, 2 bpe (default unigram). */
  modelType: number;
}

/** Reads `.model` (protobuf) or llama2.c `.bin` vocabularies, by content. */
export function readSentencePieceVocab(path: string): SentencePieceVocab {
  const bytes = readFileSync(path);
  return path.endsWith('.bin') ? parseLlama2cVocab(bytes, path) : parseModelProto(bytes, path);
}

// Minimal protobuf wire-format reader: only the fields of sentencepiece_model.proto we use.
class ProtoReader {
  pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly source: string,
  ) {}
  get done(): boolean {
    return this.pos >= this.bytes.length;
  }
  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.bytes.length) throw new Error(`${this.source}: truncated varint`);
      const b = this.bytes[this.pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
  }
  bytesField(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.bytes.length) throw new Error(`${this.source}: truncated field`);
    const out = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  float(): number {
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 4).getFloat32(
      0,
      true,
    );
    this.pos += 4;
    return v;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytesField();
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`${this.source}: unsupported protobuf wire type ${wireType}`);
  }
}

function parseModelProto(bytes: Uint8Array, source: string): SentencePieceVocab {
  const utf8 = new TextDecoder();
  const vocab: SentencePieceVocab = {
    pieces: [],
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    modelType: 1,
  };
  const top = new ProtoReader(bytes, source);
  while (!top.done) {
    const key = top.varint();
    const [field, wire] = [Math.floor(key / 8), key & 7];
    if (field === 1 && wire === 2) {
      const r = new ProtoReader(top.bytesField(), source);
      const p: SentencePiece = { piece: '', score: 0, type: PieceType.Normal };
      while (!r.done) {
        const k = r.varint();
        if (k === (1 << 3) + 2) p.piece = utf8.decode(r.bytesField());
        else if (k === (2 << 3) + 5) p.score = r.float();
        else if (k === (3 << 3) + 0) p.type = r.varint();
        else r.skip(k & 7);
      }
      vocab.pieces.push(p);
    } else if (field === 2 && wire === 2) {
      const r = new ProtoReader(top.bytesField(), source);
      while (!r.done) {
        const k = r.varint();
        if (k === (3 << 3) + 0) vocab.modelType = r.varint();
        else r.skip(k & 7);
      }
    } else if (field === 3 && wire === 2) {
      const r = new ProtoReader(top.bytesField(), source);
      while (!r.done) {
        const k = r.varint();
        if (k === (3 << 3) + 0) vocab.addDummyPrefix = r.varint() !== 0;
        else if (k === (4 << 3) + 0) vocab.removeExtraWhitespaces = r.varint() !== 0;
        else r.skip(k & 7);
      }
    } else {
      top.skip(wire);
    }
  }
  if (vocab.pieces.length === 0) throw new Error(`${source}: no pieces in sentencepiece model`);
  return vocab;
}

/**
 * llama2.c's tokenizer export: int32 max_token_length, then per token a float32 score,
 * an int32 byte length and the UTF-8 bytes, with '▁' written as ' ' and BOS/EOS written
 * as "\n<s>\n" and "\n</s>\n". Piece types are not stored; they are recovered from the
 * conventions llama2.c's sentencepiece training uses (0 <unk>, 1 <s>, 2 </s>, <0xHH> bytes).
 * The normalizer settings are not stored either; llama2.c trains with sentencepiece's
 * defaults (dummy prefix on, extra whitespace removed), as tok512.model records.
 */
function parseLlama2cVocab(bytes: Uint8Array, source: string): SentencePieceVocab {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder();
  const pieces: SentencePiece[] = [];
  let pos = 4;
  while (pos < bytes.length) {
    if (pos + 8 > bytes.length) throw new Error(`${source}: truncated at token ${pieces.length}`);
    const score = view.getFloat32(pos, true);
    const len = view.getInt32(pos + 4, true);
    pos += 8;
    if (pos + len > bytes.length) throw new Error(`${source}: truncated at token ${pieces.length}`);
    const text = utf8.decode(bytes.subarray(pos, pos + len));
    pos += len;
    const id = pieces.length;
    let piece = text.replaceAll(' ', '▁');
    let type = PieceType.Normal;
    if (id === 0) type = PieceType.Unknown;
    else if (id === 1 || id === 2) {
      type = PieceType.Control;
      piece = id === 1 ? '<s>' : '</s>';
    } else if (/^<0x[0-9A-F]{2}>$/.test(text)) type = PieceType.Byte;
    pieces.push({ piece, score, type });
  }
  return { pieces, addDummyPrefix: true, removeExtraWhitespaces: true, modelType: 2 };
}
