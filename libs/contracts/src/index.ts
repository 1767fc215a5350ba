// Generated gRPC contracts (proto/gsil/v1). The files under gen/ are produced by
// `bun run codegen` (buf + ts-proto) and never edited by hand.
export * from './gen/gsil/v1/common.js';
export * from './gen/gsil/v1/ratio.js';
export * from './gen/gsil/v1/sampler.js';
export * from './gen/gsil/v1/trainer.js';

/** Directory of the .proto sources, for server reflection. */
export const PROTO_ROOT = new URL('../../../proto', import.meta.url).pathname;
export const PROTO_FILES = [
  'gsil/v1/common.proto',
  'gsil/v1/sampler.proto',
  'gsil/v1/ratio.proto',
  'gsil/v1/trainer.proto',
];
