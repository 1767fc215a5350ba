import { afterAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertLlama2cCommand, exportOnnxCommand } from './convert.ts';

const scratch = mkdtempSync(join(tmpdir(), 'gsil-convert-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** `<sha256>  <file>` for every other file of dir, computed here. */
function expectedSums(dir: string): string[] {
  const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
  return readdirSync(dir)
    .filter((f) => f !== 'SHA256SUMS')
    .map((f) => `${sha256(join(dir, f))}  ${f}`)
    .sort();
}

const listedSums = (dir: string) =>
  readFileSync(join(dir, 'SHA256SUMS'), 'utf8').trim().split('\n').sort();

describe('gsil convert llama2c', () => {
  test('writes a model version folder with SHA256SUMS over every file', async () => {
    const out = join(scratch, 'stories260k', 'v1');
    const stderr = process.stderr.write;
    process.stderr.write = () => true;
    try {
      await convertLlama2cCommand({ out, onnx: true });
    } finally {
      process.stderr.write = stderr;
    }
    const files = readdirSync(out).sort();
    expect(files).toEqual([
      'SHA256SUMS',
      'config.json',
      'generation_config.json',
      'model.onnx',
      'model.safetensors',
      'tokenizer.json',
    ]);
    expect(listedSums(out)).toEqual(expectedSums(out));

    // export-onnx into the folder keeps the list true.
    writeFileSync(join(out, 'model.onnx'), 'stale');
    process.stderr.write = () => true;
    try {
      await exportOnnxCommand({ model: out, out: join(out, 'model.onnx') });
    } finally {
      process.stderr.write = stderr;
    }
    expect(listedSums(out)).toEqual(expectedSums(out));
  });
});
