import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import type { ModelRef } from '@gsil/contracts';
import { invalidArgument } from '@gsil/service-kit';

/** Names and versions become folder names, so they are restricted to a safe alphabet. */
const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Throws INVALID_ARGUMENT unless ref names a model and version that are safe folder names. */
export function checkModelRef(ref: ModelRef | undefined): ModelRef {
  if (!ref?.name) throw invalidArgument('model.name', 'is required');
  if (!ref.version) throw invalidArgument('model.version', 'is required');
  for (const [field, value] of [
    ['model.name', ref.name],
    ['model.version', ref.version],
  ] as const) {
    if (!SAFE_SEGMENT.test(value)) {
      throw invalidArgument(
        field,
        `must be letters, digits, ".", "_" or "-", starting with a letter or digit; received ${JSON.stringify(value)}`,
      );
    }
  }
  return ref;
}

/** `<root>/<name>/<version>`: the store layout on disk, shared by trainer, cache and volumes. */
export function modelDir(root: string, ref: ModelRef): string {
  checkModelRef(ref);
  return join(root, ref.name, ref.version);
}

export function refLabel(ref: ModelRef): string {
  return `${ref.name}@${ref.version}`;
}

/** Relative paths (with "/") of every regular file below dir, sorted. */
export async function listFilesRecursive(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(join(dir, prefix), { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) files.push(...(await listFilesRecursive(dir, rel)));
    else if (entry.isFile()) files.push(rel);
  }
  return files.sort();
}

/** A path received from the network must stay inside the target folder. */
export function isSafeRelativePath(path: string): boolean {
  if (path === '' || isAbsolute(path) || path.includes('\\')) return false;
  const normalized = normalize(path);
  return normalized === path && !normalized.split(sep).includes('..');
}

/**
 * Where a model folder may keep its decoder, first found wins: this project's export and
 * Optimum's at the top, a transformers.js repository's under onnx/; then Optimum's merged
 * decoder (one graph with and without the past, chosen by its use_cache_branch input).
 */
export const DECODER_ONNX_FILES = [
  'model.onnx',
  'onnx/model.onnx',
  'decoder_model_merged.onnx',
  'onnx/decoder_model_merged.onnx',
] as const;

/** The path of the folder's decoder graph; throws naming the places looked in when none. */
export function decoderOnnxFile(dir: string): string {
  const found = findDecoderOnnxFile(dir);
  if (!found)
    throw new Error(`${dir}: no decoder graph (looked for ${DECODER_ONNX_FILES.join(', ')})`);
  return found;
}

/** The path of the folder's decoder graph, or undefined when it has none. */
export function findDecoderOnnxFile(dir: string): string | undefined {
  return DECODER_ONNX_FILES.map((file) => join(dir, file)).find((path) => existsSync(path));
}
