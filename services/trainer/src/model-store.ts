// The trainer's model store: immutable published versions under
// <storeRoot>/<modelName>/<version>/ (config.json, model.safetensors, tokenizer.json,
// generation_config.json, model.onnx, SHA256SUMS). Samplers and ratio scorers pull them
// through ExportModel, or read the folder directly when they share the volume.

import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelRef } from '@gsil/contracts';
import { checkModelRef, modelDir, refLabel, writeChecksums } from '@gsil/model-store';
import { failedPrecondition, notFound } from '@gsil/service-kit';

/** Written last into a run's checkpoint folder; never copied into the store. */
export const COMPLETE_MARKER = '.complete';
/** Infix of a version folder being written; renamed away when complete. */
const TMP_INFIX = '.tmp-';

export class ModelStore {
  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  dirOf(model: ModelRef): string {
    return modelDir(this.root, checkModelRef(model));
  }

  /** A version exists once its folder does: publish renames it into place whole. */
  has(model: ModelRef): boolean {
    return existsSync(this.dirOf(model));
  }

  /**
   * Publishes the checkpoint folder `checkpointDir` as `model`. Versions are immutable: a
   * second publish of the same version is a no-op (a resumed run re-publishing after a crash).
   */
  async publish(model: ModelRef, checkpointDir: string): Promise<string> {
    const target = this.dirOf(model);
    if (this.has(model)) return target;
    if (!existsSync(join(checkpointDir, 'model.onnx'))) {
      throw failedPrecondition(
        `cannot publish ${refLabel(model)}: ${checkpointDir} has no model.onnx`,
      );
    }
    const tmp = `${target}${TMP_INFIX}${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    for (const entry of readdirSync(checkpointDir, { withFileTypes: true })) {
      if (entry.isFile() && entry.name !== COMPLETE_MARKER) {
        copyFileSync(join(checkpointDir, entry.name), join(tmp, entry.name));
      }
    }
    await writeChecksums(tmp);
    renameSync(tmp, target);
    return target;
  }

  /** The folder of a published version, or NOT_FOUND naming what is published. */
  resolve(model: ModelRef): string {
    if (this.has(model)) return this.dirOf(model);
    const versions = this.list()
      .filter((m) => m.name === model.name)
      .map((m) => m.version);
    throw notFound(
      `model ${refLabel(model)} is not published` +
        (versions.length ? `; published versions: ${versions.join(', ')}` : ''),
    );
  }

  list(): ModelRef[] {
    const models: ModelRef[] = [];
    const dirs = (path: string) =>
      readdirSync(path, { withFileTypes: true })
        .filter((e) => e.isDirectory() && !e.name.includes(TMP_INFIX))
        .map((e) => e.name)
        .sort();
    for (const name of dirs(this.root)) {
      for (const version of dirs(join(this.root, name))) models.push({ name, version });
    }
    return models;
  }
}
