// `gsil convert llama2c` and `gsil export-onnx`.
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { resolveAsset } from '@gsil/assets';
import { importLlama2c, loadCheckpoint, saveCheckpoint } from '@gsil/model';
import { exportOnnx } from '@gsil/model/onnx';
import { CHECKSUMS_FILE, writeChecksums } from '@gsil/model-store';
import { llama2cVocabToTokenizerJson } from '@gsil/tokenizer';

export interface ConvertOptions {
  checkpoint?: string;
  tokenizer?: string;
  out: string;
  onnx?: boolean;
}

export async function convertLlama2cCommand(options: ConvertOptions): Promise<void> {
  let { checkpoint, tokenizer } = options;
  if (!checkpoint || !tokenizer) {
    const asset = await resolveAsset('stories260k');
    checkpoint ??= asset.files['stories260K.bin'];
    tokenizer ??= asset.files['tok512.model'];
  }
  const { config, weights } = importLlama2c(checkpoint!);
  const tokenizerJson = llama2cVocabToTokenizerJson(tokenizer!);
  saveCheckpoint(options.out, { config, weights, tokenizerJson });
  if (options.onnx) writeFileSync(join(options.out, 'model.onnx'), exportOnnx(config, weights));
  // The folder is a model version as samplers and ratio scorers read it from --model-root:
  // with SHA256SUMS they check every file they copy.
  await writeChecksums(options.out);
  process.stderr.write(
    `gsil: wrote ${options.out} (${config.num_hidden_layers} layers, dim ${config.hidden_size}, ` +
      `vocab ${config.vocab_size}${options.onnx ? ', model.onnx' : ''})\n`,
  );
}

export interface ExportOptions {
  model: string;
  out: string;
}

export async function exportOnnxCommand(options: ExportOptions): Promise<void> {
  const { config, weights } = loadCheckpoint(options.model);
  const bytes = exportOnnx(config, weights);
  writeFileSync(options.out, bytes);
  // Written into a version folder that lists its checksums: list the new file too.
  const folder = dirname(options.out);
  if (existsSync(join(folder, CHECKSUMS_FILE))) await writeChecksums(folder);
  process.stderr.write(
    `gsil: wrote ${options.out} (${bytes.length} bytes) from ${options.model}\n`,
  );
}
