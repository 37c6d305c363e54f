// Packet layouts in tests are written as hex with spaces where the RFC's fields end.

/** Bytes from hex text; whitespace is ignored. */
export function hex(text: string): Uint8Array {
  return Uint8Array.from((text.replace(/\s+/g, '').match(/../g) ?? []).map((b) => parseInt(b, 16)));
}
