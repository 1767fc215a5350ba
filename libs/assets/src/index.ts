// The asset resolver (DESIGN.md "Assets"): base model and datasets by name, found locally or
// downloaded, always sha256-verified.
export * from './asset-file.js';
export * from './catalog.js';
export * from './download.js';
export * from './resolver.js';
export * from './sha256.js';
