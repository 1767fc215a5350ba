import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

/** Streams a file through sha256; returns lowercase hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Remembers verified hashes by (path, mtime, size), in memory and in `<cacheDir>/verified.json`,
 * so a second run does not re-read every file. A file that changes gets a new mtime or size
 * and is hashed again.
 */
export class HashCache {
  private entries: Record<string, string> | null = null;
  private readonly file: string;

  constructor(cacheDir: string) {
    this.file = join(cacheDir, 'verified.json');
  }

  private async load(): Promise<Record<string, string>> {
    if (this.entries) return this.entries;
    try {
      this.entries = JSON.parse(await readFile(this.file, 'utf8'));
    } catch {
      this.entries = {};
    }
    return this.entries!;
  }

  /** The sha256 of the file, computed only when (path, mtime, size) is new. */
  async sha256(path: string): Promise<string> {
    const info = await stat(path);
    const key = `${resolve(path)}|${info.mtimeMs}|${info.size}`;
    const entries = await this.load();
    const known = entries[key];
    if (known) return known;
    const digest = await sha256File(path);
    entries[key] = digest;
    await this.save();
    return digest;
  }

  private async save(): Promise<void> {
    // Best effort: a read-only cache must not stop a run, it only makes the next one slower.
    try {
      await mkdir(dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(this.entries));
      await rename(tmp, this.file);
    } catch {}
  }
}
