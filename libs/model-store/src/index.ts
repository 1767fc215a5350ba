// How replicas get model versions: the trainer streams a version folder (ExportModel), replicas
// pull it on first use into a verified local cache and keep a few loaded.
export * from './cache.js';
export * from './export.js';
export * from './fetchers.js';
export * from './layout.js';
export * from './serving-config.js';
