export * from './decode-step.ts';
export * from './export.ts';
export * from './export-file.ts';
export { oneNodeGraph } from './one-node-graph.ts';
export { onnxProto } from './onnx-proto.ts';
export { GSIL_CONFIG_KEY, GSIL_EXPORT_KEY, ONNX_OPSET } from './weights.ts';
