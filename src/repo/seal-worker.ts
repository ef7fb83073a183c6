/**
 * The sealing worker: computes a chunk's id and seals it, off the main thread. One of the two halves of "use both
 * cores": the main thread reads and chunks, this thread hashes and encrypts.
 *
 * Messages in: `{ keys: { sealKey, chunkIdKey } }` once, then `{ seq, type, parts: Uint8Array[], id?, seal? }`
 * (views of shared read buffers, so nothing is copied on the way in). Out: `{ seq, id, parts, length }`: the sealed
 * blob's slices in order (salt, ciphertext, tag), each in a buffer of its own, transferred back: the ciphertext is
 * never copied. With `seal: false` only the id is computed (`{ seq, id }`); with `id` given it is not computed.
 *
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { type SealKeys, sealBlob } from '../crypto/envelope.js';
import { ChunkIdentifier } from '../crypto/chunk-id.js';
import type { ObjectTypeCode } from '../crypto/object-type.js';

let keys: SealKeys | undefined;
let ids: ChunkIdentifier | undefined;

parentPort!.on('message', (m: { keys?: { sealKey: Uint8Array; chunkIdKey: Uint8Array }; seq?: number; type?: ObjectTypeCode; parts?: Uint8Array[]; id?: Uint8Array; seal?: boolean }) => {
  if (m.keys) {
    keys = { sealKey: Buffer.from(m.keys.sealKey) };
    ids = new ChunkIdentifier({ chunkIdKey: Buffer.from(m.keys.chunkIdKey) });
    return;
  }
  try {
    if (!keys || !ids) throw new Error('seal worker used before it was given keys');
    const id = m.id ? Buffer.from(m.id) : ids.id(m.parts!);
    if (m.seal === false) {
      const idOnly = new Uint8Array(id);
      parentPort!.postMessage({ seq: m.seq, id: idOnly }, [idOnly.buffer]);
      return;
    }
    const sealed = sealBlob(keys, m.type!, id, m.parts!);
    // The ciphertext slices are buffers of their own (the cipher allocates each): they move back without a copy.
    // Any other slice (salt, tag: views of shared pools) is copied into a buffer of its own first, since a message
    // carries a view's whole underlying buffer.
    const parts: Uint8Array[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const p of sealed.parts) {
      const owned = p.byteOffset === 0 && p.byteLength === p.buffer.byteLength && p.buffer instanceof ArrayBuffer && !transfer.includes(p.buffer);
      const out = owned ? p : new Uint8Array(p);
      parts.push(out);
      transfer.push(out.buffer as ArrayBuffer);
    }
    const idOut = new Uint8Array(id);
    transfer.push(idOut.buffer);
    parentPort!.postMessage({ seq: m.seq, id: idOut, parts, length: sealed.length }, transfer);
  } catch (e) {
    parentPort!.postMessage({ seq: m.seq, error: String((e as Error).message ?? e) });
  }
});
