// The start-up self-check: the configured execution provider must run a graph before the
// replica reports SERVING. Models are pulled on first use, so the check uses a one-node
// graph (y = x + x) instead of a model file.
import { createSession, type ExecutionProviderChoice } from '@gsil/inference';
import { oneNodeGraph } from '@gsil/model/onnx';
import * as ort from 'onnxruntime-node';

/** Runs the graph on the provider; returns the provider ONNX Runtime actually used. */
export async function selfCheck(
  provider: ExecutionProviderChoice,
  threads: number,
  warn: (message: string) => void,
): Promise<'cuda' | 'webgpu' | 'cpu'> {
  const { session, executionProvider } = await createSession(oneNodeGraph('Add', 4), {
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
