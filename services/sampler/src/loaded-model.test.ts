import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelDir } from './loaded-model.ts';
import { makeModelRoot } from './test-fixture.ts';

let root: string;

beforeAll(() => {
  root = makeModelRoot();
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const options = {
  provider: 'cpu' as const,
  threads: 1,
  decodeWorkers: 2,
  maxBatchSize: 4,
  warn: () => {},
};

async function tokensOf(model: Awaited<ReturnType<typeof loadModelDir>>, maxNewTokens: number) {
  const out: number[][] = [];
  for await (const c of model.batcher.generate([{ promptIds: [1] }, { promptIds: [1, 403] }], {
    temperature: 0,
    maxNewTokens,
  })) {
    out[c.requestIndex] = c.tokenIds;
  }
  return out;
}

describe('loadModelDir', () => {
  test('an unloaded model keeps generating for the request using it, then stops its workers', async () => {
    const model = await loadModelDir(join(root, 'stories260k/base'), options);
    expect(model.batcher.workers).toBe(2);
    expect(model.executionProvider).toBe('cpu');
    const endUse = model.use();
    // Evicted while in use: the request still gets every token.
    const unloaded = model.unload();
    const tokens = await tokensOf(model, 40);
    expect(tokens.map((t) => t.length)).toEqual([40, 40]);
    // The published greedy sample starts "Once upon a time" = 403, 407, 261, 378.
    expect(tokens[0].slice(0, 4)).toEqual([403, 407, 261, 378]);
    endUse();
    await unloaded;
    await expect(tokensOf(model, 1)).rejects.toThrow('after close');
  });

  test('an unused model stops its workers at once when unloaded', async () => {
    const model = await loadModelDir(join(root, 'stories260k/base'), options);
    await model.unload();
    await expect(tokensOf(model, 1)).rejects.toThrow('after close');
  });
});
