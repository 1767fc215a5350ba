// One-off: where a batch-32 greedy decode's time goes (ORT kernels vs the rest).
import { readFileSync } from 'node:fs';
import { assetFile } from '@gsil/assets';
import { Generator } from '@gsil/inference';
import { importLlama2c } from '@gsil/model';
import { decodeStepGraph, exportOnnx } from '@gsil/model/onnx';
import * as ort from 'onnxruntime-node';
const { config, weights } = importLlama2c(await assetFile('stories260k', 'stories260K.bin'));
const bytes = exportOnnx(config, weights);
const opts = (prof: boolean): ort.InferenceSession.SessionOptions => ({
  graphOptimizationLevel: 'all', intraOpNumThreads: 1, enableCpuMemArena: true,
  enableProfiling: prof, profileFilePrefix: '/tmp/ortprof',
  extra: { session: { set_denormal_as_zero: '1' } },
});
const B = Number(process.env.B ?? 32);
for (const prof of [false, false, true]) {
  const s = await ort.InferenceSession.create(bytes, opts(false));
  const d = await ort.InferenceSession.create(decodeStepGraph(bytes)!, opts(prof));
  const g = new Generator(s, config.vocab_size, d);
  const reqs = Array.from({ length: B }, (_, i) => ({ promptIds: [1], sampleIndex: i }));
  const t0 = performance.now();
  let n = 0;
  for await (const c of g.generate(reqs, { temperature: 0, maxNewTokens: 128, maxBatch: B })) n += c.tokenIds.length;
  const ms = performance.now() - t0;
  console.log(`prof=${prof} ${n} tokens ${ms.toFixed(0)} ms ${(n / ms * 1000).toFixed(0)} tok/s, ${(ms / 128).toFixed(3)} ms/step`);
  if (prof) {
    const file = d.endProfiling();
    const ev = JSON.parse(readFileSync(file, 'utf8')) as Array<{ cat: string; name: string; dur: number; args?: { op_name?: string } }>;
    const runs = ev.filter((e) => e.cat === 'Session' && e.name === 'model_run');
    const nodes = ev.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
    const runUs = runs.reduce((a, e) => a + e.dur, 0);
    const nodeUs = nodes.reduce((a, e) => a + e.dur, 0);
    console.log(`model_run ${runs.length} calls, ${(runUs / runs.length).toFixed(0)} us each; kernels ${(nodeUs / runs.length).toFixed(0)} us/run`);
    const byOp = new Map<string, number>();
    for (const e of nodes) byOp.set(e.args?.op_name ?? '?', (byOp.get(e.args?.op_name ?? '?') ?? 0) + e.dur);
    console.log([...byOp].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / runs.length).toFixed(0)}`).join(', '));
  }
}
