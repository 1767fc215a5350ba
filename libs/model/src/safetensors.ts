// The safetensors file format (https://github.com/huggingface/safetensors), float32 only:
// an 8-byte little-endian header length N, N bytes of JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__: {...}}, then the raw
// little-endian tensor bytes, offsets relative to the end of the header.

import type { WeightTensor } from './config.ts';

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

// The JSON header is padded with spaces so the data starts 8-byte aligned, as the
// reference writer does; readers may then view tensors in place.
const ALIGN_BYTES = 8;

/** Serialises float32 tensors, in the given order, with `__metadata__: {format: 'pt'}`. */
export function encodeSafetensors(tensors: Map<string, WeightTensor>): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offsetBytes = 0;
  for (const [name, t] of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(
        `tensor ${name}: shape [${t.shape}] needs ${count} values, has ${t.data.length}`,
      );
    }
    header[name] = {
      dtype: 'F32',
      shape: t.shape,
      data_offsets: [offsetBytes, offsetBytes + count * 4],
    };
    offsetBytes += count * 4;
  }
  let json = JSON.stringify(header);
  const pad = (ALIGN_BYTES - ((8 + Buffer.byteLength(json)) % ALIGN_BYTES)) % ALIGN_BYTES;
  json += ' '.repeat(pad);
  const headerBytes = Buffer.from(json, 'utf8');

  const out = new Uint8Array(8 + headerBytes.length + offsetBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Parses a safetensors file holding F32 tensors. `source` names the file in errors.
 * Throws on a malformed header, a non-F32 dtype, or data that runs past the end.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  source: string,
): { tensors: Map<string, WeightTensor>; metadata: Record<string, string> } {
  if (bytes.byteLength < 8) throw new Error(`${source}: ${bytes.byteLength} bytes, no header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (8 + headerLen > bytes.byteLength) {
    throw new Error(`${source}: header of ${headerLen} bytes runs past the end of the file`);
  }
  let header: Record<string, SafetensorsEntry | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLen)).toString('utf8'));
  } catch (cause) {
    throw new Error(`${source}: header is not valid JSON`, { cause });
  }
  const dataStart = 8 + headerLen;
  const dataBytes = bytes.byteLength - dataStart;
  const tensors = new Map<string, WeightTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const entry = raw as SafetensorsEntry;
    if (entry.dtype !== 'F32') {
      throw new Error(`${source}: tensor ${name} has dtype ${entry.dtype}, only F32 is supported`);
    }
    const [begin, end] = entry.data_offsets;
    const count = entry.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * 4) {
      throw new Error(
        `${source}: tensor ${name} spans ${end - begin} bytes, shape [${entry.shape}] needs ${count * 4}`,
      );
    }
    if (end > dataBytes) {
      throw new Error(
        `${source}: tensor ${name} is truncated (needs data bytes up to ${end}, file has ${dataBytes})`,
      );
    }
    // Copy: the tensor must be 4-byte aligned and must not pin the whole file buffer.
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { shape: entry.shape, data });
  }
  return { tensors, metadata };
}
