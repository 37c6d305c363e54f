// Growable big-endian writer; `finish()` returns a view of exactly the bytes written.

/** Writes network-order integers and byte strings into a buffer that grows as needed. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  /** Bytes written so far; also the offset of the next write. */
  length = 0;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
    return this;
  }

  u16(v: number): this {
    this.reserve(2);
    this.view.setUint16(this.length, v);
    this.length += 2;
    return this;
  }

  u32(v: number): this {
    this.reserve(4);
    this.view.setUint32(this.length, v >>> 0);
    this.length += 4;
    return this;
  }

  u64(v: bigint): this {
    this.reserve(8);
    this.view.setBigUint64(this.length, v);
    this.length += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  /** Writes `n` zero bytes. */
  zeros(n: number): this {
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }

  /** Overwrites a u16 at an earlier offset (length fields written after their body). */
  setU16(offset: number, v: number): void {
    this.view.setUint16(offset, v);
  }

  /** A view of written bytes [start, end) (shares memory until the next write that grows). */
  slice(start = 0, end = this.length): Uint8Array {
    return this.buf.subarray(start, end);
  }

  /** Starts over, keeping the buffer: a writer reused for message after message. */
  reset(): this {
    this.length = 0;
    return this;
  }

  /** The written bytes. */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}
