import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { ExportModelRequest, FileChunk } from '@gsil/contracts';
import { notFound } from '@gsil/service-kit';
import { checkModelRef, listFilesRecursive, modelDir, refLabel } from './layout.js';

/** Bytes per FileChunk message (the contract allows at most 1 MiB). */
export const CHUNK_BYTES = 1 << 20;

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The subset of a server stream that streamModelDir writes to. */
type ChunkSink = Pick<ServerWritableStream<unknown, FileChunk>, 'write' | 'cancelled'> & {
  once: ServerWritableStream<unknown, FileChunk>['once'];
};

/**
 * Writes every file of dir as FileChunk messages: files in sorted order, each in chunks of at
 * most CHUNK_BYTES, every chunk carrying the whole file's size and sha256 (hashed first, so
 * the receiver can check each file as soon as its last chunk lands). Respects backpressure
 * and stops when the client cancels. Does not end the stream.
 */
export async function streamModelDir(dir: string, call: ChunkSink): Promise<void> {
  for (const path of await listFilesRecursive(dir)) {
    const fullPath = join(dir, path);
    const sha256 = await sha256Of(fullPath);
    const totalSize = (await stat(fullPath)).size;
    let offset = 0;
    const send = async (data: Buffer) => {
      const chunk: FileChunk = { path, offset, data, totalSize, sha256 };
      offset += data.length;
      if (!call.write(chunk)) await once(call as unknown as NodeJS.EventEmitter, 'drain');
    };
    // An empty file still gets one (empty) chunk so that the receiver creates it.
    if (totalSize === 0) await send(Buffer.alloc(0));
    for await (const data of createReadStream(fullPath, { highWaterMark: CHUNK_BYTES })) {
      if (call.cancelled) return;
      await send(data as Buffer);
    }
  }
}

/**
 * The TrainerService.ExportModel handler over a store root laid out as
 * `<root>/<name>/<version>/`: NOT_FOUND for an unknown version, INVALID_ARGUMENT for a bad ref.
 */
export function exportModelHandler(root: string) {
  return async (call: ServerWritableStream<ExportModelRequest, FileChunk>): Promise<void> => {
    const ref = checkModelRef(call.request.model);
    const dir = modelDir(root, ref);
    if (!existsSync(dir)) throw notFound(`model ${refLabel(ref)} is not published in ${root}`);
    await streamModelDir(dir, call);
  };
}
