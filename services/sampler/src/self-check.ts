// The start-up self-check: the configured execution provider must run a graph before the
// replica reports SERVING. Models are pulled on first use, so the check uses a one-node
// graph built here instead of a model file.
import { createSession, type ExecutionProviderChoice } from '@gsil/inference';
import { onnxProto } from '@gsil/model/onnx';
import type { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';

/** y = x + x over a float vector of length 4. */
function doublingGraph(): Uint8Array {
  const vector = (name: string): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: onnxProto.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimValue: 4 }] },
      },
    },
  });
  const model = onnxProto.ModelProto.create({
    irVersion: 8,
    producerName: 'gsil-sampler-self-check',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'self_check',
      node: [{ opType: 'Add', input: ['x', 'x'], output: ['y'], name: 'add' }],
      input: [vector('x')],
      output: [vector('y')],
    },
  });
  return onnxProto.ModelProto.encode(model).finish();
}

/** Runs the graph on the provider; returns the provider ONNX Runtime actually used. */
export async function selfCheck(
  provider: ExecutionProviderChoice,
  threads: number,
  warn: (message: string) => void,
): Promise<'cuda' | 'webgpu' | 'cpu'> {
  const { session, executionProvider } = await createSession(doublingGraph(), {
    executionProvider: provider,
    intraOpThreads: threads,
    warn,
  });
  try {
    const x = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [4]);
    const y = (await session.run({ x })).y.data as Float32Array;
    if (Array.from(y).join(',') !== '2,4,6,8') {
      throw new Error(
        `self-check on ${executionProvider}: 2 * [1, 2, 3, 4] gave [${Array.from(y)}]`,
      );
    }
  } finally {
    await session.release();
  }
  return executionProvider;
}
