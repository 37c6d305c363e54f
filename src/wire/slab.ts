// Small byte arrays cut from shared slabs, as Node's Buffer pool does, in plain Uint8Array.
// V8 keeps a typed array of ≤ 64 bytes on the JS heap, and a socket that sends one must
// first move it off the heap; a larger one costs an ArrayBuffer allocation of its own.
// A view into a slab costs neither: one datagram reply is one `copyBytes`.

const SLAB_BYTES = 8192;
/** Copies larger than this get a buffer of their own rather than a slab's tail. */
const MAX_SLAB_COPY = SLAB_BYTES / 8;

let slab = new Uint8Array(SLAB_BYTES);
let used = 0;

/**
 * A copy of `bytes` that no later copy shares. Small copies are views into a shared slab
 * (their `buffer` is the slab: use `byteOffset`/`byteLength`, never transfer it).
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  if (n > MAX_SLAB_COPY) return bytes.slice();
  if (used + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
  const out = slab.subarray(used, used + n);
  used += n;
  out.set(bytes);
  return out;
}
