// Test fixture: a decoder this project did not export. A small random-weight Llama with
// grouped query attention (4 heads, 2 KV heads), exported by torch.onnx with the Optimum /
// transformers.js names; expected.json holds what transformers' own generate gives for it.
// optimum-tiny/make_fixture.py made both.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assetFile } from '@gsil/assets';
import { llama2cVocabToTokenizerJson } from '@gsil/tokenizer';
import type { onnx } from 'onnx-proto';
import { onnxProto } from '../onnx/onnx-proto.ts';

const FIXTURE = join(import.meta.dir, 'optimum-tiny');

export interface OptimumTinyCase {
  /** The prompt text; prompt_ids is [BOS] + its sentencepiece ids. */
  text: string;
  prompt_ids: number[];
  /** transformers' greedy continuation. */
  ids: number[];
  /** log_softmax at temperature 1 of each continuation token. */
  logprobs: number[];
}

export const OPTIMUM_TINY: { new_tokens: number; cases: OptimumTinyCase[] } = JSON.parse(
  readFileSync(join(FIXTURE, 'expected.json'), 'utf8'),
);

/**
 * Writes the fixture as a transformers.js repository would hold it: config.json,
 * tokenizer.json (stories260K's vocabulary, which the fixture shares) and onnx/model.onnx,
 * or with `merged`, onnx/decoder_model_merged.onnx (mergedDecoderBytes).
 */
export async function writeOptimumTinyModel(dir: string, merged = false): Promise<void> {
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  if (merged) writeFileSync(join(dir, 'onnx', 'decoder_model_merged.onnx'), mergedDecoderBytes());
  else cpSync(join(FIXTURE, 'model.onnx'), join(dir, 'onnx', 'model.onnx'));
  cpSync(join(FIXTURE, 'config.json'), join(dir, 'config.json'));
  const tok512 = await assetFile('stories260k', 'tok512.bin');
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(llama2cVocabToTokenizerJson(tok512)));
}

/**
 * The fixture as Optimum's merged decoder (decoder_model_merged.onnx): one more input,
 * use_cache_branch (bool [1]), choosing between the graph with the past (true) and one that
 * ignores it (false: past sliced to length 0, the attention mask to the new tokens), as
 * Optimum's no-cache branch does. A caller that sent false on decode steps would lose the
 * context and so the expected tokens.
 */
export function mergedDecoderBytes(): Uint8Array {
  const model = onnxProto.ModelProto.decode(readFileSync(join(FIXTURE, 'model.onnx')));
  const graph = model.graph as onnx.IGraphProto;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name as string));
  const inputs = (graph.input ?? []).map((v) => v.name as string);
  const pastNames = inputs.filter((name) => name.startsWith('past_key_values.'));

  /** The graph's nodes with every internal value prefixed, inputs renamed by `feed`. */
  const branch = (prefix: string, feed: Map<string, string>, extra: onnx.INodeProto[]) => {
    const rename = (name: string) =>
      name === '' || initializers.has(name) ? name : (feed.get(name) ?? `${prefix}${name}`);
    const nodes = (graph.node ?? []).map((node) => ({
      ...node,
      name: `${prefix}${node.name ?? ''}`,
      input: (node.input ?? []).map(rename),
      output: (node.output ?? []).map((name) => `${prefix}${name}`),
    }));
    return {
      name: `${prefix}branch`,
      node: [...extra, ...nodes],
      output: (graph.output ?? []).map((v) => ({ ...v, name: `${prefix}${v.name}` })),
    };
  };

  const keep = new Map(inputs.map((name) => [name, name]));
  const thenBranch = branch('then/', keep, []);

  // No cache: every past input sliced to length 0, the mask to the last seq columns.
  const noPast = new Map(keep);
  const constant = (name: string, values: number[]): onnx.INodeProto => ({
    opType: 'Constant',
    name,
    output: [name],
    attribute: [
      {
        name: 'value',
        type: onnxProto.AttributeProto.AttributeType.TENSOR,
        t: {
          dataType: onnxProto.TensorProto.DataType.INT64,
          dims: [values.length],
          int64Data: values,
        },
      },
    ],
  });
  const extra: onnx.INodeProto[] = [
    constant('else/zero', [0]),
    constant('else/one', [1]),
    constant('else/two', [2]),
    constant('else/end', [2 ** 31 - 1]),
    { opType: 'Shape', name: 'else/ids_shape', input: ['input_ids'], output: ['else/ids_shape'] },
    {
      opType: 'Gather',
      name: 'else/seq',
      input: ['else/ids_shape', 'else/one'],
      output: ['else/seq'],
    },
    { opType: 'Neg', name: 'else/neg_seq', input: ['else/seq'], output: ['else/neg_seq'] },
    {
      opType: 'Slice',
      name: 'else/mask',
      input: ['attention_mask', 'else/neg_seq', 'else/end', 'else/one'],
      output: ['else/mask'],
    },
  ];
  noPast.set('attention_mask', 'else/mask');
  for (const name of pastNames) {
    const sliced = `else/${name}`;
    extra.push({
      opType: 'Slice',
      name: sliced,
      input: [name, 'else/zero', 'else/zero', 'else/two'],
      output: [sliced],
    });
    noPast.set(name, sliced);
  }
  const elseBranch = branch('else/', noPast, extra);

  const merged: onnx.IModelProto = {
    ...model,
    graph: {
      name: 'merged_decoder',
      initializer: graph.initializer,
      input: [
        ...(graph.input ?? []),
        {
          name: 'use_cache_branch',
          type: {
            tensorType: {
              elemType: onnxProto.TensorProto.DataType.BOOL,
              shape: { dim: [{ dimValue: 1 }] },
            },
          },
        },
      ],
      output: graph.output,
      node: [
        {
          opType: 'If',
          name: 'optimum::if',
          input: ['use_cache_branch'],
          output: (graph.output ?? []).map((v) => v.name as string),
          attribute: [
            {
              name: 'then_branch',
              type: onnxProto.AttributeProto.AttributeType.GRAPH,
              g: thenBranch,
            },
            {
              name: 'else_branch',
              type: onnxProto.AttributeProto.AttributeType.GRAPH,
              g: elseBranch,
            },
          ],
        },
      ],
    },
  };
  return onnxProto.ModelProto.encode(onnxProto.ModelProto.create(merged)).finish();
}
