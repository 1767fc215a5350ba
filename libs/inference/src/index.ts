export * from './calls.ts';
export * from './continuous-batcher.ts';
export * from './decode-pool.ts';
export * from './generator.ts';
export * from './model-io.ts';
export * from './sampling.ts';
export * from './score.ts';
export * from './session.ts';
