import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelRef } from '@gsil/contracts';
import { GsilError, notFound, Status, unavailable } from '@gsil/service-kit';
import type { Logger } from 'pino';
import type { ModelFetcher } from './fetchers.js';
import { checkModelRef, modelDir, refLabel } from './layout.js';

export interface ModelCacheOptions<T> {
  /** Local folder holding pulled versions as `<root>/<name>/<version>/`. */
  root: string;
  /** How many loaded models stay resident; the least recently used is unloaded first. */
  maxResident: number;
  /** Tried in order; the first that has the version wins. */
  fetchers: ModelFetcher[];
  /** Turns a verified local folder into a usable model (e.g. an ONNX Runtime session). */
  load: (dir: string, ref: ModelRef) => Promise<T>;
  unload?: (model: T, ref: ModelRef) => Promise<void> | void;
  logger?: Logger;
}

/**
 * Model versions on demand for sampler and ratio replicas. `get(ref)` returns the loaded
 * model, pulling the version first if this replica has never seen it. Versions are immutable,
 * so a folder in the local cache is trusted: it was only renamed into place after every file
 * passed its sha256 check.
 */
export class ModelCache<T> {
  /** Loaded models, least recently used first (Map keeps insertion order). */
  private readonly resident = new Map<string, { ref: ModelRef; model: T }>();
  /** One promise per version being pulled or loaded: concurrent requests share it. */
  private readonly pending = new Map<string, Promise<T>>();
  /** Number of pulls started (not shared requests), for metrics and tests. */
  pulls = 0;

  constructor(private readonly options: ModelCacheOptions<T>) {
    if (!Number.isInteger(options.maxResident) || options.maxResident < 1) {
      throw new Error(`maxResident must be an integer >= 1; received ${options.maxResident}`);
    }
  }

  /** Refs of the loaded models, least recently used first. */
  residentRefs(): ModelRef[] {
    return [...this.resident.values()].map((entry) => entry.ref);
  }

  async get(ref: ModelRef): Promise<T> {
    checkModelRef(ref);
    const key = refLabel(ref);
    const hit = this.resident.get(key);
    if (hit) {
      this.resident.delete(key);
      this.resident.set(key, hit);
      return hit.model;
    }
    let promise = this.pending.get(key);
    if (!promise) {
      promise = this.pullAndLoad(ref).finally(() => this.pending.delete(key));
      this.pending.set(key, promise);
    }
    return promise;
  }

  private async pullAndLoad(ref: ModelRef): Promise<T> {
    const dir = modelDir(this.options.root, ref);
    if (!existsSync(dir)) await this.pull(ref, dir);
    const model = await this.options.load(dir, ref);
    this.resident.set(refLabel(ref), { ref, model });
    await this.evict();
    return model;
  }

  /** 1. each fetcher into its own temp folder; 2. rename the first complete one into place. */
  private async pull(ref: ModelRef, dir: string): Promise<void> {
    this.pulls++;
    const log = this.options.logger?.child({ model: refLabel(ref) });
    const failures: string[] = [];
    let allNotFound = true;
    for (const fetcher of this.options.fetchers) {
      const tmp = join(this.options.root, '.tmp', `${ref.name}-${ref.version}-${randomUUID()}`);
      const startMs = performance.now();
      try {
        await mkdir(tmp, { recursive: true });
        await fetcher.fetch(ref, tmp);
        await mkdir(join(this.options.root, ref.name), { recursive: true });
        await rename(tmp, dir).catch(async (err) => {
          // Another process may have completed the same immutable version first.
          if (!existsSync(dir)) throw err;
          await rm(tmp, { recursive: true, force: true });
        });
        log?.info({ from: fetcher.label, durationMs: performance.now() - startMs }, 'pulled');
        return;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        const notFoundHere = err instanceof GsilError && err.code === Status.NOT_FOUND;
        allNotFound &&= notFoundHere;
        failures.push(`${fetcher.label}: ${(err as Error).message}`);
        log?.warn({ from: fetcher.label, error: (err as Error).message }, 'pull failed');
      }
    }
    const detail = failures.join('; ') || 'no model sources configured';
    if (allNotFound && failures.length > 0) {
      throw notFound(`model ${refLabel(ref)} not found (${detail})`);
    }
    throw unavailable(`model ${refLabel(ref)} could not be pulled (${detail})`);
  }

  private async evict(): Promise<void> {
    while (this.resident.size > this.options.maxResident) {
      const [key, entry] = this.resident.entries().next().value!;
      this.resident.delete(key);
      // No lease counting here: a request may still be using an evicted model, so `unload`
      // must defer freeing native resources until its users finish (the sampler and ratio
      // services release a session only when its last request has ended).
      await this.options.unload?.(entry.model, entry.ref);
      this.options.logger?.info({ model: key }, 'unloaded');
    }
  }

  /** Unloads every resident model. */
  async close(): Promise<void> {
    for (const { ref, model } of this.resident.values()) await this.options.unload?.(model, ref);
    this.resident.clear();
  }
}
