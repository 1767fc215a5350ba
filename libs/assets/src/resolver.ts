import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ASSETS, type AssetSpec, assetSpec } from './catalog.js';
import { downloadFile } from './download.js';
import { HashCache, sha256File } from './sha256.js';

/** Where a resolved asset was found. */
export type AssetSource = 'path' | 'env' | 'cache' | 'shared' | 'download';

export interface ResolveOptions {
  /** An explicit location (the asset's folder or a data root holding it); searched alone. */
  path?: string;
  /** A data root laid out like shared/data; default $GSIL_DATA_DIR. */
  dataDir?: string;
  /** The user cache; default $XDG_CACHE_HOME/gsil or ~/.cache/gsil. */
  cacheDir?: string;
  /** Default: `shared/data` in the checkout or in any folder above it. */
  sharedDataDirs?: string[];
  /** Fetch from the public URL as a last resort (default true). */
  download?: boolean;
  /** Base URL replacing the canonical hosts: `<mirror>/<subdir>/<file>`; default $GSIL_ASSET_MIRROR. */
  mirror?: string;
  downloadTimeoutMs?: number;
}

export interface ResolvedAsset {
  name: string;
  dir: string;
  /** Absolute path of each file by file name, e.g. files["train.csv"]. */
  files: Record<string, string>;
  source: AssetSource;
}

/** No verified copy anywhere; `searched` holds one "place: reason" line per location. */
export class AssetNotFoundError extends Error {
  constructor(
    readonly asset: string,
    readonly searched: string[],
  ) {
    super(`asset "${asset}" not found; searched:\n  ${searched.join('\n  ')}`);
    this.name = 'AssetNotFoundError';
  }
}

const REPO_ROOT = resolve(new URL('../../../', import.meta.url).pathname);

export function defaultCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg ? xdg : join(homedir(), '.cache'), 'gsil');
}

/** `shared/data` in the checkout, then beside it, then further up (where CI keeps its copy). */
export function defaultSharedDataDirs(from = REPO_ROOT): string[] {
  const dirs: string[] = [];
  for (let dir = from; ; dir = dirname(dir)) {
    dirs.push(join(dir, 'shared', 'data'));
    if (dirname(dir) === dir) return dirs;
  }
}

interface Candidate {
  source: AssetSource;
  dir: string;
}

function candidates(spec: AssetSpec, options: ResolveOptions): Candidate[] {
  if (options.path) {
    const path = resolve(options.path);
    return [
      { source: 'path', dir: path },
      { source: 'path', dir: join(path, spec.subdir) },
    ];
  }
  const list: Candidate[] = [];
  const dataDir = options.dataDir ?? process.env.GSIL_DATA_DIR;
  if (dataDir) list.push({ source: 'env', dir: join(resolve(dataDir), spec.subdir) });
  list.push({ source: 'cache', dir: join(options.cacheDir ?? defaultCacheDir(), spec.subdir) });
  for (const shared of options.sharedDataDirs ?? defaultSharedDataDirs()) {
    list.push({ source: 'shared', dir: join(shared, spec.subdir) });
  }
  return list;
}

/** Null when every file is present with the pinned sha256, else why not. */
async function checkDir(spec: AssetSpec, dir: string, hashes: HashCache): Promise<string | null> {
  if (!existsSync(dir)) return 'no such folder';
  const missing = spec.files.filter((f) => !existsSync(join(dir, f.name))).map((f) => f.name);
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  for (const file of spec.files) {
    const digest = await hashes.sha256(join(dir, file.name));
    if (digest !== file.sha256) {
      return `${file.name} has sha256 ${digest}, expected ${file.sha256} (corrupted or a different version; refused)`;
    }
  }
  return null;
}

function resolved(spec: AssetSpec, dir: string, source: AssetSource): ResolvedAsset {
  const files = Object.fromEntries(spec.files.map((f) => [f.name, join(dir, f.name)]));
  return { name: spec.name, dir, files, source };
}

/** Finds a verified local copy without downloading; `searched` explains each miss. */
export async function locateAsset(
  name: string,
  options: ResolveOptions = {},
): Promise<{ found: ResolvedAsset | null; searched: string[] }> {
  const spec = assetSpec(name);
  const hashes = new HashCache(options.cacheDir ?? defaultCacheDir());
  const searched: string[] = [];
  for (const { source, dir } of candidates(spec, options)) {
    const problem = await checkDir(spec, dir, hashes);
    if (problem === null) return { found: resolved(spec, dir, source), searched };
    searched.push(`${dir} (${source}): ${problem}`);
  }
  return { found: null, searched };
}

/**
 * Finds an asset by name: explicit path; $GSIL_DATA_DIR; the user cache; shared/data beside
 * the checkout; last the public URL, downloaded into the cache and sha256-checked. Every file
 * returned has been verified against its pinned sha256.
 */
export async function resolveAsset(
  name: string,
  options: ResolveOptions = {},
): Promise<ResolvedAsset> {
  const spec = assetSpec(name);
  const { found, searched } = await locateAsset(name, options);
  if (found) return found;
  if (options.path || options.download === false) throw new AssetNotFoundError(name, searched);

  const cacheDir = join(options.cacheDir ?? defaultCacheDir(), spec.subdir);
  const mirror = options.mirror ?? process.env.GSIL_ASSET_MIRROR;
  for (const file of spec.files) {
    const url = mirror ? `${mirror.replace(/\/$/, '')}/${spec.subdir}/${file.name}` : file.url;
    const dest = join(cacheDir, file.name);
    // Files are renamed into the cache only after their hash matched, but a user may have
    // edited one since: re-download anything that is not the pinned bytes.
    if (existsSync(dest) && (await sha256File(dest)) === file.sha256) continue;
    try {
      await downloadFile(file, url, dest, options.downloadTimeoutMs);
    } catch (err) {
      searched.push(`${url} (download): ${(err as Error).message}`);
      throw new AssetNotFoundError(name, searched);
    }
  }
  const problem = await checkDir(spec, cacheDir, new HashCache(dirname(cacheDir)));
  if (problem) {
    searched.push(`${cacheDir} (download): ${problem}`);
    throw new AssetNotFoundError(name, searched);
  }
  return resolved(spec, cacheDir, 'download');
}

export interface AssetStatus {
  name: string;
  description: string;
  license: string;
  files: { name: string; sha256: string; url: string; sizeBytes: number }[];
  found: { dir: string; source: AssetSource } | null;
  /** Why each place searched before the hit (or all of them) did not qualify. */
  searched: string[];
}

/** Every known asset with where it was found or why not (no download), for `gsil assets list`. */
export async function listAssets(options: ResolveOptions = {}): Promise<AssetStatus[]> {
  const list: AssetStatus[] = [];
  for (const spec of Object.values(ASSETS)) {
    const { found, searched } = await locateAsset(spec.name, options);
    list.push({
      name: spec.name,
      description: spec.description,
      license: spec.license,
      files: spec.files.map(({ name, sha256, url, sizeBytes }) => ({
        name,
        sha256,
        url,
        sizeBytes,
      })),
      found: found ? { dir: found.dir, source: found.source } : null,
      searched,
    });
  }
  return list;
}

export interface ImportResult {
  imported: { name: string; dir: string }[];
  skipped: { name: string; reason: string }[];
}

/**
 * Copies every asset found verified under `dir` (a data root like shared/data, or one asset's
 * folder) into the cache. Files are copied to a temp name and renamed, so the cache never
 * holds a partial file; an asset with a corrupted file is skipped as a whole.
 */
export async function importAssets(
  dir: string,
  options: Pick<ResolveOptions, 'cacheDir'> = {},
): Promise<ImportResult> {
  const cacheRoot = options.cacheDir ?? defaultCacheDir();
  const result: ImportResult = { imported: [], skipped: [] };
  for (const spec of Object.values(ASSETS)) {
    const { found, searched } = await locateAsset(spec.name, { path: dir, cacheDir: cacheRoot });
    if (!found) {
      result.skipped.push({ name: spec.name, reason: searched.join('; ') });
      continue;
    }
    const target = join(cacheRoot, spec.subdir);
    await mkdir(target, { recursive: true });
    for (const file of spec.files) {
      const tmp = join(target, `${file.name}.${process.pid}.import`);
      try {
        await copyFile(found.files[file.name], tmp);
        await rename(tmp, join(target, file.name));
      } finally {
        await rm(tmp, { force: true });
      }
    }
    result.imported.push({ name: spec.name, dir: target });
  }
  return result;
}
