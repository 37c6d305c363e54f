// UTF-8 text attributes with the RFC 8489 length limits: §14.3 USERNAME (< 513 bytes),
// §14.9 REALM, §14.10 NONCE, §14.14 SOFTWARE (< 128 characters, ≤ 763 bytes),
// §14.16 ALTERNATE-DOMAIN (≤ 255 bytes, ASCII host name).
import { defineAttribute, StunDecodeError, type AttrCodec } from '../attribute.ts';
import { NatkitError } from '../../util/index.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

interface TextLimits {
  /** Most bytes of UTF-8. */
  readonly maxBytes: number;
  /** Most characters (code points), where the RFC limits characters. */
  readonly maxChars?: number;
}

/** Makes the codec of a UTF-8 text attribute that enforces its RFC limits both ways. */
export function textAttribute(type: number, name: string, limits: TextLimits): AttrCodec<string> {
  const check = (text: string, bytes: number): string | undefined => {
    if (bytes > limits.maxBytes) return `${name}: expected at most ${limits.maxBytes} bytes, got ${bytes}`;
    if (limits.maxChars !== undefined && [...text].length > limits.maxChars) {
      return `${name}: expected at most ${limits.maxChars} characters, got ${[...text].length}`;
    }
    return undefined;
  };
  // The last text encoded, checked: a server writes the same SOFTWARE into every response.
  let last: { readonly text: string; readonly bytes: Uint8Array } | undefined;
  return defineAttribute<string>({
    type,
    name,
    encode(value, w) {
      if (last?.text !== value) {
        const bytes = encoder.encode(value);
        const problem = check(value, bytes.length);
        if (problem !== undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', problem);
        last = { text: value, bytes };
      }
      w.bytes(last.bytes);
    },
    decode(r) {
      const start = r.offset;
      const raw = r.bytesView(r.remaining, name);
      let text: string;
      try {
        text = decoder.decode(raw);
      } catch (cause) {
        throw new StunDecodeError(`${name}: expected UTF-8 text`, start, { cause });
      }
      const problem = check(text, raw.length);
      if (problem !== undefined) throw new StunDecodeError(problem, start);
      return text;
    },
  });
}

export const USERNAME = textAttribute(0x0006, 'USERNAME', { maxBytes: 512 });
export const REALM = textAttribute(0x0014, 'REALM', { maxBytes: 763, maxChars: 127 });
export const NONCE = textAttribute(0x0015, 'NONCE', { maxBytes: 763, maxChars: 127 });
export const SOFTWARE = textAttribute(0x8022, 'SOFTWARE', { maxBytes: 763, maxChars: 127 });
export const ALTERNATE_DOMAIN = textAttribute(0x8003, 'ALTERNATE-DOMAIN', { maxBytes: 255 });
