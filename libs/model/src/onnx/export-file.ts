// Writes the ONNX graph of a checkpoint directory (config.json + model.safetensors).
import { writeFileSync } from 'node:fs';
import { loadCheckpoint } from '../checkpoint.ts';
import { exportOnnx } from './export.ts';

/** Exports `modelDir`'s checkpoint to `outFile`; returns the number of bytes written. */
export function exportOnnxFile(modelDir: string, outFile: string): number {
  const { config, weights } = loadCheckpoint(modelDir);
  const bytes = exportOnnx(config, weights);
  writeFileSync(outFile, bytes);
  return bytes.byteLength;
}
