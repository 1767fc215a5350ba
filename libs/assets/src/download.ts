import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AssetFile } from './catalog.js';

/** Default limit for one file download, connection to last byte. */
export const DOWNLOAD_TIMEOUT_MS = 120_000;

/**
 * Downloads one file to `dest`, checking its sha256 on the way. The bytes go to a temp file
 * beside dest and are renamed into place only when the hash matches, so a failed or
 * corrupted download never leaves a file that a later run would trust.
 */
export async function downloadFile(
  file: AssetFile,
  url: string,
  dest: string,
  timeoutMs = DOWNLOAD_TIMEOUT_MS,
): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.${process.pid}.${Date.now()}.part`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    const hash = createHash('sha256');
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    body.on('data', (chunk: Buffer) => hash.update(chunk));
    await pipeline(body, createWriteStream(tmp));
    const digest = hash.digest('hex');
    if (digest !== file.sha256) {
      throw new Error(`sha256 mismatch: expected ${file.sha256}, got ${digest}`);
    }
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { force: true });
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`download of ${url} failed: ${reason}`, { cause: err });
  }
}
