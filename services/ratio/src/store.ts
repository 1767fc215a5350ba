// Versions missing from the local model root are pulled from the trainer's model store
// (ExportModel stream, sha256-checked) through libs/model-store's ModelCache.

import type { RatioConfig } from './config.ts';
import type { ModelDirResolver } from './models.ts';

export function storeResolver(config: RatioConfig): ModelDirResolver {
  // TODO: pull through @gsil/model-store's ModelCache (the library is not in the tree yet).
  throw new Error(
    `modelStore: received ${JSON.stringify(config.modelStore)}; pulling from a model store is not available in this build, use modelRoot`,
  );
}
