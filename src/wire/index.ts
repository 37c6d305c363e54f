// Layer 0: byte-level reading and writing.
export { ByteReader } from './byte-reader.ts';
export { ByteWriter } from './byte-writer.ts';
export { copyBytes } from './slab.ts';
