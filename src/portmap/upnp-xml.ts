// XML for UPnP descriptions and SOAP messages, read with saxes (a strict, non-validating
// SAX parser) into a small element tree under hard limits. No regular expressions
// touch XML. Safety against hostile gateways:
// - any DOCTYPE is refused: UPnP descriptions carry none and SOAP 1.1 §3 forbids one
//   ("A SOAP message MUST NOT contain a Document Type Declaration"); saxes never
//   expands internal entities anyway, so entity-expansion bombs ("billion laughs")
//   fail as undefined entities even before that check;
// - depth and element count are capped, the text size by the HTTP body cap.
// Names are matched by local part with prefixes dropped and no namespace processing:
// real devices send unbound prefixes (test/fixtures/upnp/soap/README.md), and the
// element names UPnP defines are unique without their namespaces.
import { SaxesParser } from 'saxes';
import { NatkitError } from '../util/index.ts';

/** An element: its local name, child elements and concatenated character data. */
export interface XmlElement {
  /** Local name: 'Envelope' for <s:Envelope>. */
  readonly name: string;
  readonly children: readonly XmlElement[];
  /** Character data directly inside this element (entity- and CDATA-decoded), untrimmed. */
  readonly text: string;
}

/** Limits of parseXml(). */
export interface XmlLimits {
  /** Deepest nesting. @default 32 */
  readonly maxDepth?: number;
  /** Most elements in the document. @default 4096 */
  readonly maxElements?: number;
}

interface Building {
  name: string;
  children: XmlElement[];
  text: string;
}

const localName = (qname: string): string => qname.slice(qname.indexOf(':') + 1);

/** Parses a whole document into its root element; throws NatkitError ERR_XML for any malformed or hostile input. */
export function parseXml(text: string, limits: XmlLimits = {}): XmlElement {
  const maxDepth = limits.maxDepth ?? 32;
  const maxElements = limits.maxElements ?? 4096;
  const parser = new SaxesParser({ xmlns: false, position: true });
  const stack: Building[] = [];
  let root: XmlElement | undefined;
  let elements = 0;
  const fail = (what: string, cause?: unknown): never => {
    throw new NatkitError('ERR_XML', `XML ${what} (line ${parser.line}, column ${parser.column})`, { cause });
  };
  parser.on('error', (err) => fail(err.message, err));
  parser.on('doctype', () => fail('has a DOCTYPE; UPnP and SOAP 1.1 §3 documents must not'));
  parser.on('opentag', (tag) => {
    if (++elements > maxElements) fail(`has more than ${maxElements} elements`);
    if (stack.length >= maxDepth) fail(`nests deeper than ${maxDepth} elements`);
    stack.push({ name: localName(tag.name), children: [], text: '' });
  });
  const onText = (data: string): void => {
    const top = stack.at(-1);
    if (top !== undefined) top.text += data;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  parser.on('closetag', () => {
    const done = stack.pop();
    if (done === undefined) return;
    const element: XmlElement = done;
    const parent = stack.at(-1);
    if (parent === undefined) root = element;
    else parent.children.push(element);
  });
  try {
    parser.write(text).close();
  } catch (err) {
    if (err instanceof NatkitError) throw err;
    fail(err instanceof Error ? err.message : String(err), err);
  }
  if (root === undefined) return fail('has no root element');
  return root;
}

/** The first child element named `name` (local name), if any. */
export function child(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((c) => c.name === name);
}

/** Every child element named `name`. */
export function children(element: XmlElement, name: string): readonly XmlElement[] {
  return element.children.filter((c) => c.name === name);
}

/** The trimmed text of the first child named `name`, or undefined when there is none. */
export function childText(element: XmlElement, name: string): string | undefined {
  return child(element, name)?.text.trim();
}
