// onnx-proto is a CommonJS bundle whose exports Node's ESM loader cannot name (`import {
// onnx } from 'onnx-proto'` works under Bun only). Required, it loads under both; its types
// still come from the package: `import type { onnx } from 'onnx-proto'`.
import { createRequire } from 'node:module';
import type { onnx } from 'onnx-proto';

/** The package's `onnx` namespace object: ModelProto, TensorProto, AttributeProto, ... */
export const onnxProto: typeof onnx = createRequire(import.meta.url)('onnx-proto').onnx;
