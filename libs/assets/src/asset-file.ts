import { assetSpec } from './catalog.js';
import { type ResolvedAsset, resolveAsset } from './resolver.js';

// One resolution per asset and process: `bun test` runs every file in one process, and many
// of them ask for stories260k.
const resolving = new Map<string, Promise<ResolvedAsset>>();

/**
 * The absolute path of one file of a catalog asset, found where `gsil run` finds it
 * (resolveAsset's defaults: $GSIL_DATA_DIR, the user cache, shared/data beside the checkout,
 * then a sha256-checked download into the cache). Meant for tests, fixtures and benchmarks,
 * which await it at the top of the module: `importLlama2c(await assetFile('stories260k',
 * 'stories260K.bin'))`. A miss rejects with resolveAsset's AssetNotFoundError, which lists
 * every place searched and why each did not qualify.
 */
export async function assetFile(name: string, file: string): Promise<string> {
  const spec = assetSpec(name);
  if (!spec.files.some((f) => f.name === file)) {
    const known = spec.files.map((f) => f.name).join(', ');
    throw new Error(`asset "${name}" has no file "${file}"; its files are ${known}`);
  }
  let pending = resolving.get(name);
  if (!pending) {
    pending = resolveAsset(name);
    resolving.set(name, pending);
    // A failure is not remembered: a later call searches again (e.g. after an import).
    pending.catch(() => resolving.delete(name));
  }
  return (await pending).files[file];
}
