import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import {
  copyFile,
  type FileHandle,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { type FileChunk, type ModelRef, TrainerServiceClient } from '@gsil/contracts';
import { GsilError, isServiceError, notFound, Status, unavailable } from '@gsil/service-kit';
import { isSafeRelativePath, listFilesRecursive, modelDir, refLabel } from './layout.js';

/**
 * A source of model versions. `fetch` writes every file of the version into `destDir` (an
 * empty temp folder owned by the caller) and checks their sha256; it throws NOT_FOUND when
 * the source does not have the version, anything else when the source failed.
 */
export interface ModelFetcher {
  /** For logs and error messages, e.g. "trainer 10.0.0.7:50053". */
  readonly label: string;
  fetch(ref: ModelRef, destDir: string): Promise<void>;
}

/** Default limit for one whole ExportModel download. */
export const EXPORT_TIMEOUT_MS = 300_000;

interface OpenFile {
  path: string;
  handle: FileHandle;
  hash: Hash;
  written: number;
  totalSize: number;
  sha256: string;
}

/** Pulls a version over TrainerService.ExportModel (the trainer's streaming endpoint). */
export class GrpcModelFetcher implements ModelFetcher {
  readonly label: string;
  private readonly client: InstanceType<typeof TrainerServiceClient>;

  constructor(
    readonly address: string,
    private readonly timeoutMs = EXPORT_TIMEOUT_MS,
  ) {
    this.label = `trainer ${address}`;
    this.client = new TrainerServiceClient(address, credentials.createInsecure());
  }

  async fetch(ref: ModelRef, destDir: string): Promise<void> {
    const stream = this.client.exportModel(
      { model: ref },
      { deadline: Date.now() + this.timeoutMs },
    );
    let current: OpenFile | null = null;
    const finishFile = async (file: OpenFile) => {
      await file.handle.close();
      if (file.written !== file.totalSize) {
        throw unavailable(`${file.path}: received ${file.written} of ${file.totalSize} bytes`);
      }
      const digest = file.hash.digest('hex');
      if (digest !== file.sha256) {
        throw unavailable(`${file.path}: sha256 mismatch: expected ${file.sha256}, got ${digest}`);
      }
    };
    try {
      for await (const chunk of stream as AsyncIterable<FileChunk>) {
        if (current && current.path !== chunk.path) {
          await finishFile(current);
          current = null;
        }
        if (!current) current = await this.openFile(destDir, chunk);
        if (chunk.offset !== current.written) {
          throw unavailable(
            `${chunk.path}: chunk at offset ${chunk.offset}, expected ${current.written}`,
          );
        }
        await current.handle.write(chunk.data);
        current.hash.update(chunk.data);
        current.written += chunk.data.length;
      }
      if (!current) throw unavailable(`${refLabel(ref)}: the trainer sent no files`);
      await finishFile(current);
    } catch (err) {
      await current?.handle.close().catch(() => {});
      stream.cancel();
      if (err instanceof GsilError) throw err;
      if (isServiceError(err)) {
        const serviceError = err as ServiceError;
        if (serviceError.code === Status.NOT_FOUND) throw notFound(serviceError.details, err);
        throw new GsilError(serviceError.code, serviceError.details, err);
      }
      throw err;
    }
  }

  private async openFile(destDir: string, chunk: FileChunk): Promise<OpenFile> {
    if (!isSafeRelativePath(chunk.path)) {
      throw unavailable(
        `refusing file path ${JSON.stringify(chunk.path)} outside the model folder`,
      );
    }
    const fullPath = join(destDir, chunk.path);
    await mkdir(dirname(fullPath), { recursive: true });
    // "wx": a path sent twice (non-contiguously) is a protocol error, not an overwrite.
    const handle = await open(fullPath, 'wx').catch((err) => {
      throw unavailable(`${chunk.path}: cannot create (${(err as Error).message})`, err);
    });
    const { path, totalSize, sha256 } = chunk;
    return { path, handle, hash: createHash('sha256'), written: 0, totalSize, sha256 };
  }

  close(): void {
    this.client.close();
  }
}

/** Name of the optional checksum list in a store folder (the `sha256sum` output format). */
export const CHECKSUMS_FILE = 'SHA256SUMS';

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Copies a version from a shared volume laid out as `<root>/<name>/<version>/`. When the
 * folder holds a SHA256SUMS file (written by the publisher) every copied file is checked
 * against it, and a file missing from it is refused.
 */
export class DirectoryModelFetcher implements ModelFetcher {
  readonly label: string;

  constructor(readonly root: string) {
    this.label = `directory ${root}`;
  }

  async fetch(ref: ModelRef, destDir: string): Promise<void> {
    const source = modelDir(this.root, ref);
    if (!existsSync(source)) throw notFound(`${refLabel(ref)} not in ${this.root}`);
    const expected = existsSync(join(source, CHECKSUMS_FILE))
      ? parseChecksums(await readFile(join(source, CHECKSUMS_FILE), 'utf8'))
      : null;
    for (const path of await listFilesRecursive(source)) {
      const target = join(destDir, path);
      await mkdir(dirname(target), { recursive: true });
      await copyFile(join(source, path), target);
      if (!expected || path === CHECKSUMS_FILE) continue;
      const digest = await sha256Of(target);
      if (expected.get(path) !== digest) {
        throw unavailable(
          `${path}: sha256 mismatch: expected ${expected.get(path) ?? '(not listed)'}, got ${digest}`,
        );
      }
    }
  }
}

/** `<hex>  <path>` lines, as sha256sum writes them. */
export function parseChecksums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (match) sums.set(match[2], match[1]);
  }
  return sums;
}

/** Writes SHA256SUMS for every file of a published version folder (for DirectoryModelFetcher). */
export async function writeChecksums(dir: string): Promise<void> {
  const lines: string[] = [];
  for (const path of await listFilesRecursive(dir)) {
    if (path !== CHECKSUMS_FILE) lines.push(`${await sha256Of(join(dir, path))}  ${path}`);
  }
  await writeFile(join(dir, CHECKSUMS_FILE), `${lines.join('\n')}\n`);
}

/**
 * Downloads one version from a trainer into destDir (which must not exist yet), verified and
 * atomically: the files land in a temp folder beside destDir that is renamed at the end.
 */
export async function pullModelDir(
  trainerAddress: string,
  ref: ModelRef,
  destDir: string,
  timeoutMs = EXPORT_TIMEOUT_MS,
): Promise<void> {
  const fetcher = new GrpcModelFetcher(trainerAddress, timeoutMs);
  const tmp = `${destDir}.${process.pid}.partial`;
  try {
    await mkdir(tmp, { recursive: true });
    await fetcher.fetch(ref, tmp);
    await rename(tmp, destDir);
  } finally {
    fetcher.close();
    await rm(tmp, { recursive: true, force: true });
  }
}
