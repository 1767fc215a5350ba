import { describe, expect, test } from 'bun:test';
import { isAbsolute } from 'node:path';
import { assetFile } from './asset-file.js';
import { ASSETS } from './catalog.js';
import { sha256File } from './sha256.js';

describe('assetFile', () => {
  test('gives the absolute path of the pinned bytes, wherever the resolver found them', async () => {
    const path = await assetFile('stories260k', 'tok512.bin');
    expect(isAbsolute(path)).toBe(true);
    expect(path.endsWith('/tok512.bin')).toBe(true);
    const pinned = ASSETS.stories260k.files.find((f) => f.name === 'tok512.bin');
    expect(await sha256File(path)).toBe(pinned?.sha256 as string);
  });

  test('a file the asset does not have is refused naming the files it has', async () => {
    await expect(assetFile('stories260k', 'REFERENCE.md')).rejects.toThrow(
      'asset "stories260k" has no file "REFERENCE.md"; its files are stories260K.bin, tok512.bin, tok512.model',
    );
  });

  test('an unknown asset is refused naming the known ones', async () => {
    await expect(assetFile('mawps', 'dev.csv')).rejects.toThrow(
      'unknown asset "mawps"; known assets: stories260k, mawps-fold0, gsm8k',
    );
  });
});
