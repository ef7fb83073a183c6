/**
 * The sealing worker: computes a chunk's id and seals it, off the main thread. One of the two halves of "use both
 * cores": the main thread reads and chunks, this thread hashes and encrypts.
 *
 * Messages in: `{ keys: { sealKey, chunkIdKey } }` once, then `{ seq, type, parts: Uint8Array[] }` (views of
 * shared read buffers, so nothing is copied on the way in). Out: `{ seq, id, sealed }` with `sealed` one fresh
 * buffer holding the whole sealed blob, transferred back (a worker-side copy that spares the main thread).
 *
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { type SealKeys, sealBlob } from '../crypto/envelope.js';
import { ChunkIdentifier } from '../crypto/chunk-id.js';
import type { ObjectTypeCode } from '../crypto/object-type.js';

let keys: SealKeys | undefined;
let ids: ChunkIdentifier | undefined;

parentPort!.on('message', (m: { keys?: { sealKey: Uint8Array; chunkIdKey: Uint8Array }; seq?: number; type?: ObjectTypeCode; parts?: Uint8Array[] }) => {
  if (m.keys) {
    keys = { sealKey: Buffer.from(m.keys.sealKey) };
    ids = new ChunkIdentifier({ chunkIdKey: Buffer.from(m.keys.chunkIdKey) });
    return;
  }
  try {
    if (!keys || !ids) throw new Error('seal worker used before it was given keys');
    const id = ids.id(m.parts!);
    const sealed = sealBlob(keys, m.type!, id, m.parts!);
    const out = new Uint8Array(sealed.length); // its own ArrayBuffer: safe to transfer (Buffers may share a pool)
    let o = 0;
    for (const p of sealed.parts) {
      out.set(p, o);
      o += p.length;
    }
    const idOut = new Uint8Array(id);
    parentPort!.postMessage({ seq: m.seq, id: idOut, sealed: out }, [out.buffer, idOut.buffer]);
  } catch (e) {
    parentPort!.postMessage({ seq: m.seq, error: String((e as Error).message ?? e) });
  }
});
