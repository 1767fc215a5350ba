// The trainer's model store: immutable published versions under
// <storeRoot>/<modelName>/<version>/ (config.json, model.safetensors, tokenizer.json,
// generation_config.json, model.onnx). Samplers and ratio scorers pull them through
// ExportModel, or read the folder directly when they share the volume.

import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { ModelRef } from '@gsil/contracts';
import { failedPrecondition, invalidArgument, notFound } from '@gsil/service-kit';

/** Names and versions become folder names: keep them to a safe alphabet. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Written last into a version folder; a folder without it is an interrupted publish. */
export const COMPLETE_MARKER = '.complete';

export function checkModelRef(model: ModelRef | undefined): ModelRef {
  if (!model?.name) throw invalidArgument('model.name', 'is required');
  if (!model.version) throw invalidArgument('model.version', 'is required');
  if (!SAFE_NAME.test(model.name)) {
    throw invalidArgument(
      'model.name',
      `must match ${SAFE_NAME}; got ${JSON.stringify(model.name)}`,
    );
  }
  if (!SAFE_NAME.test(model.version)) {
    throw invalidArgument(
      'model.version',
      `must match ${SAFE_NAME}; got ${JSON.stringify(model.version)}`,
    );
  }
  return model;
}

/**
 * Copies every file of `dir` (flat) into `targetDir` through a temporary folder renamed into
 * place, then marks it complete, so readers never see half a version.
 */
export function copyDirAtomically(dir: string, targetDir: string): void {
  const tmp = `${targetDir}.tmp-${process.pid}-${Date.now()}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && entry.name !== COMPLETE_MARKER) {
      copyFileSync(join(dir, entry.name), join(tmp, entry.name));
    }
  }
  writeFileSync(join(tmp, COMPLETE_MARKER), '');
  rmSync(targetDir, { recursive: true, force: true });
  renameSync(tmp, targetDir);
}

export class ModelStore {
  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  dirOf(model: ModelRef): string {
    checkModelRef(model);
    return join(this.root, model.name, model.version);
  }

  has(model: ModelRef): boolean {
    return existsSync(join(this.dirOf(model), COMPLETE_MARKER));
  }

  /**
   * Publishes the checkpoint folder `checkpointDir` as `model`. Versions are immutable: a
   * second publish of the same version is a no-op (a resumed run re-publishing after a crash).
   */
  publish(model: ModelRef, checkpointDir: string): string {
    const target = this.dirOf(model);
    if (this.has(model)) return target;
    if (!existsSync(join(checkpointDir, 'model.onnx'))) {
      throw failedPrecondition(`cannot publish ${model.name}/${model.version}: no model.onnx`);
    }
    mkdirSync(join(this.root, model.name), { recursive: true });
    copyDirAtomically(checkpointDir, target);
    return target;
  }

  /** The folder of a published version, or NOT_FOUND naming what is published. */
  resolve(model: ModelRef): string {
    if (this.has(model)) return this.dirOf(model);
    const versions = this.list()
      .filter((m) => m.name === model.name)
      .map((m) => m.version);
    throw notFound(
      `model ${model.name}/${model.version} is not published` +
        (versions.length ? `; published versions: ${versions.join(', ')}` : ''),
    );
  }

  list(): ModelRef[] {
    const models: ModelRef[] = [];
    for (const name of readdirSync(this.root).sort()) {
      const nameDir = join(this.root, name);
      for (const version of readdirSync(nameDir).sort()) {
        if (existsSync(join(nameDir, version, COMPLETE_MARKER))) models.push({ name, version });
      }
    }
    return models;
  }
}
