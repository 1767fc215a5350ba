import { afterAll, describe, expect, test } from 'bun:test';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ASSETS } from './catalog.js';
import {
  AssetNotFoundError,
  defaultSharedDataDirs,
  importAssets,
  listAssets,
  resolveAsset,
} from './resolver.js';
import { sha256File } from './sha256.js';

const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gsil-assets-'));
  temps.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/**
 * A data root laid out like shared/data, assembled from wherever the resolver finds each
 * asset on this machine ($GSIL_DATA_DIR, the cache, a shared/data folder, a download), so
 * these tests need no particular copy.
 */
const SHARED = tempDir();
for (const [name, spec] of Object.entries(ASSETS)) {
  const found = await resolveAsset(name);
  for (const [file, path] of Object.entries(found.files)) {
    cpSync(path, join(SHARED, spec.subdir, file));
  }
}
/** The published checksum list, when a shared/data copy sits beside the checkout. */
const PUBLISHED_SUMS = defaultSharedDataDirs()
  .map((dir) => join(dir, 'SHA256SUMS'))
  .find((file) => existsSync(file));

/**
 * Serves a folder over HTTP, like the public hosts would; `corrupt` flips each body's
 * first byte.
 */
async function serveFolder(root: string, corrupt = false) {
  const server = createServer((req, res) => {
    const path = join(root, decodeURIComponent(req.url ?? '/'));
    if (!existsSync(path)) return res.writeHead(404).end();
    const body = readFileSync(path);
    if (corrupt) body[0] ^= 0xff;
    res.writeHead(200).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('catalog', () => {
  test.skipIf(!PUBLISHED_SUMS)('pins match the shared copy SHA256SUMS', () => {
    const sums = readFileSync(PUBLISHED_SUMS as string, 'utf8');
    for (const spec of Object.values(ASSETS)) {
      for (const file of spec.files) {
        expect(sums).toContain(`${file.sha256}  ${spec.subdir}/${file.name}`);
      }
    }
  });
});

describe('resolveAsset', () => {
  test('shared/data folders are searched from the checkout upwards', () => {
    expect(defaultSharedDataDirs('/work/repo')).toEqual([
      '/work/repo/shared/data',
      '/work/shared/data',
      '/shared/data',
    ]);
  });

  test('finds a shared/data copy and verifies it', async () => {
    const cacheDir = tempDir();
    const asset = await resolveAsset('mawps-fold0', {
      cacheDir,
      dataDir: '',
      sharedDataDirs: ['/nonexistent/shared/data', SHARED],
      download: false,
    });
    expect(asset.source).toBe('shared');
    expect(asset.dir).toBe(join(SHARED, 'mawps/fold0'));
    expect(asset.files['dev.csv']).toBe(join(SHARED, 'mawps/fold0/dev.csv'));
    // The verified hashes are remembered by path, mtime and size for the next run.
    const verified = JSON.parse(readFileSync(join(cacheDir, 'verified.json'), 'utf8'));
    const values = Object.values(verified);
    expect(values).toContain('bad59cff796b01a87363ea970f1fa80c15f56ff5f4388143aadbdc3feaf5f990');
    expect(Object.keys(verified)[0]).toStartWith(join(SHARED, 'mawps/fold0'));
  });

  test('an explicit path wins and may name the data root or the asset folder', async () => {
    const cacheDir = tempDir();
    const byRoot = await resolveAsset('stories260k', { path: SHARED, cacheDir });
    expect(byRoot).toMatchObject({ source: 'path', dir: join(SHARED, 'stories260k') });
    const byDir = await resolveAsset('gsm8k', { path: join(SHARED, 'gsm8k'), cacheDir });
    expect(Object.keys(byDir.files).sort()).toEqual(['test.jsonl', 'train.jsonl']);
  });

  test('a corrupted file is refused; the search moves on and reports why', async () => {
    const dataDir = tempDir();
    cpSync(join(SHARED, 'mawps'), join(dataDir, 'mawps'), { recursive: true });
    writeFileSync(join(dataDir, 'mawps/fold0/dev.csv'), 'Question,Numbers,Equation,Answer\n');
    const cacheDir = tempDir();
    const asset = await resolveAsset('mawps-fold0', {
      dataDir,
      cacheDir,
      sharedDataDirs: [SHARED],
      download: false,
    });
    expect(asset.source).toBe('shared');
    expect(asset.dir).toBe(join(SHARED, 'mawps/fold0'));

    const err = await resolveAsset('mawps-fold0', { path: dataDir, cacheDir }).catch((e) => e);
    expect(err).toBeInstanceOf(AssetNotFoundError);
    // The expected digest is coreutils' sha256sum of the same header line.
    expect(err.message).toContain(
      'dev.csv has sha256 a483cb761032ada27f7d37a5501433c9b7375153f6d9caaf133f7f7e12bc8f5f',
    );
  });

  test('downloads into the cache from a mirror, checking sha256', async () => {
    const { url, server } = await serveFolder(SHARED);
    const cacheDir = tempDir();
    const options = { cacheDir, dataDir: '', sharedDataDirs: [], mirror: url };
    const asset = await resolveAsset('stories260k', options);
    expect(asset).toMatchObject({ source: 'download', dir: join(cacheDir, 'stories260k') });
    expect(await sha256File(asset.files['tok512.model'])).toBe(
      'dfff07d929db979913f166ec94a6f5ecad4c70cfed8eb5c9cbe7e464455e46f5',
    );
    expect((await resolveAsset('stories260k', options)).source).toBe('cache');
    server.close();
  });

  test('a corrupted download leaves nothing behind; a miss lists every place searched', async () => {
    const { url, server } = await serveFolder(SHARED, true);
    const cacheDir = tempDir();
    const dataDir = tempDir();
    const err = await resolveAsset('gsm8k', {
      cacheDir,
      dataDir,
      sharedDataDirs: ['/nonexistent/shared/data'],
      mirror: url,
    }).catch((e) => e);
    server.close();
    expect(err).toBeInstanceOf(AssetNotFoundError);
    expect(err.searched).toEqual([
      `${join(dataDir, 'gsm8k')} (env): no such folder`,
      `${join(cacheDir, 'gsm8k')} (cache): no such folder`,
      '/nonexistent/shared/data/gsm8k (shared): no such folder',
      expect.stringContaining(
        `${url}/gsm8k/train.jsonl (download): download of ${url}/gsm8k/train.jsonl failed: sha256 mismatch: expected 17f347dc`,
      ),
    ]);
    expect(readdirSync(join(cacheDir, 'gsm8k'))).toEqual([]);
  });
});

describe('listAssets and importAssets', () => {
  test('imports verified assets into the cache and lists where each is found', async () => {
    const cacheDir = tempDir();
    const result = await importAssets(SHARED, { cacheDir });
    expect(result.imported.map((a) => a.name)).toEqual(['stories260k', 'mawps-fold0', 'gsm8k']);
    expect(await sha256File(join(cacheDir, 'gsm8k/test.jsonl'))).toBe(
      '3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14',
    );
    const list = await listAssets({ cacheDir, dataDir: '' });
    expect(list.map((a) => [a.name, a.found?.source])).toEqual([
      ['stories260k', 'cache'],
      ['mawps-fold0', 'cache'],
      ['gsm8k', 'cache'],
    ]);
    expect(list[0].license).toContain('MIT');
  });

  test('an asset with a corrupted file is skipped on import', async () => {
    const source = tempDir();
    cpSync(join(SHARED, 'stories260k'), source, { recursive: true });
    writeFileSync(join(source, 'tok512.bin'), 'not a vocabulary');
    const cacheDir = tempDir();
    const result = await importAssets(source, { cacheDir });
    expect(result.imported).toEqual([]);
    expect(result.skipped.find((s) => s.name === 'stories260k')?.reason).toContain(
      'tok512.bin has sha256',
    );
    expect(existsSync(join(cacheDir, 'stories260k'))).toBe(false);
  });
});
