// The smallest runnable model: one elementwise node applied to its input twice, for checks
// that a provider can create and run a session at all (sampler self-check, provider tests).
import type { onnx } from 'onnx-proto';
import { onnxProto } from './onnx-proto.ts';
import { ONNX_OPSET } from './weights.ts';

/** y = op(x, x) over a float vector x of `length` values ('Add' doubles, 'Mul' squares). */
export function oneNodeGraph(op: 'Add' | 'Mul', length: number): Uint8Array {
  const vector = (name: string): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: onnxProto.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimValue: length }] },
      },
    },
  });
  const model = onnxProto.ModelProto.create({
    irVersion: 8,
    producerName: 'gsil',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    graph: {
      name: `one_${op.toLowerCase()}`,
      node: [{ opType: op, input: ['x', 'x'], output: ['y'], name: op.toLowerCase() }],
      input: [vector('x')],
      output: [vector('y')],
    },
  });
  return onnxProto.ModelProto.encode(model).finish();
}
