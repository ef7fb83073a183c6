/**
 * `vaultpath demo`: runs the core data path over every regular file below a folder with a fresh random key:
 * chunk (keyed FastCDC), chunk id, dedup within the run, seal, then open every sealed chunk again and compare.
 */
import { createReadStream } from 'node:fs';
import { opendir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { VaultpathError } from '../../errors.js';
import { VaultKeys, generateMasterKey } from '../../crypto/keys.js';
import { ChunkIdentifier } from '../../crypto/chunk-id.js';
import { joinSealed, openBlob, sealBlob } from '../../crypto/envelope.js';
import { ObjectType } from '../../crypto/object-type.js';
import { DEFAULT_CHUNKER_PARAMS, chunkStream } from '../../chunk/fastcdc.js';
import { concatParts } from '../../bytes.js';
import { type CommandContext, text } from '../context.js';

/** Regular files below `root`, depth first, without following symbolic links; one directory handle open at a time. */
async function* regularFiles(root: string): AsyncGenerator<string> {
  const dir = await opendir(root);
  for await (const entry of dir) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) yield* regularFiles(path);
    else if (entry.isFile()) yield path;
  }
}

export async function demoCommand(ctx: CommandContext): Promise<number> {
  const source = resolve(text(ctx, 'source') ?? '.');
  const keys = VaultKeys.fromMasterKey(generateMasterKey());
  const ids = new ChunkIdentifier(keys);
  const seen = new Set<string>();
  const totals = { files: 0, bytes: 0, chunks: 0, uniqueChunks: 0, uniqueBytes: 0, sealedBytes: 0, verified: 0 };
  const started = performance.now();
  for await (const path of regularFiles(source)) {
    totals.files++;
    const stream = createReadStream(path, { highWaterMark: 1024 * 1024 });
    for await (const chunk of chunkStream(stream, keys.gearTable, DEFAULT_CHUNKER_PARAMS, { signal: ctx.signal })) {
      totals.chunks++;
      totals.bytes += chunk.length;
      const id = ids.id(chunk.parts);
      const key = id.toString('hex');
      if (seen.has(key)) continue;
      seen.add(key);
      totals.uniqueChunks++;
      totals.uniqueBytes += chunk.length;
      const sealed = joinSealed(sealBlob(keys, ObjectType.data, id, chunk.parts));
      totals.sealedBytes += sealed.length;
      const opened = openBlob(keys, ObjectType.data, id, sealed);
      if (!opened.equals(concatParts(chunk.parts)) || !ids.matches(id, opened)) {
        throw new VaultpathError('VP_ID_MISMATCH', `A chunk of ${relative(source, path)} did not open to its original bytes.`);
      }
      totals.verified++;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const mbPerSecond = totals.bytes / 1e6 / Math.max(seconds, 1e-9);
  if (ctx.json) {
    ctx.out(JSON.stringify({ source, ...totals, seconds, mbPerSecond }));
  } else {
    ctx.out(`Source:   ${source}`);
    ctx.out(`Files:    ${totals.files}, ${(totals.bytes / 1e6).toFixed(1)} MB in ${totals.chunks} chunks`);
    ctx.out(`Unique:   ${totals.uniqueChunks} chunks, ${(totals.uniqueBytes / 1e6).toFixed(1)} MB (sealed ${(totals.sealedBytes / 1e6).toFixed(1)} MB)`);
    ctx.out(`Verified: ${totals.verified} of ${totals.uniqueChunks} sealed chunks opened to their original bytes`);
    ctx.out(`Time:     ${seconds.toFixed(2)} s, ${mbPerSecond.toFixed(0)} MB/s`);
  }
  return 0;
}
