// Real routers' SSDP answers and device descriptions (test/fixtures/upnp/, each with
// its source): natkit must read from each exactly what expect.json says.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { endpoint } from '../../src/net/index.ts';
import { checkLocation, parseDeviceDescription, parseSsdpResponse } from '../../src/portmap/upnp-index.ts';

const DIR = fileURLToPath(new URL('../fixtures/upnp/', import.meta.url));

interface Expect {
  readonly ssdp?: Readonly<Record<string, unknown>>;
  readonly description?: {
    readonly location: string;
    readonly deviceType: string;
    readonly friendlyName: string;
    readonly services: readonly { readonly serviceType: string; readonly controlUrl: string }[];
  };
}

const routers = readdirSync(DIR, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== 'soap').map((d) => d.name);

test('every fixture folder has a README naming its source and an expect.json', () => {
  assert.ok(routers.length >= 9, `found ${routers.length} router fixtures`);
  for (const r of routers) {
    assert.match(readFileSync(join(DIR, r, 'README.md'), 'utf8'), /Source: .+commit [0-9a-f]{40}/, `${r}/README.md names repository, path and commit`);
    assert.ok(existsSync(join(DIR, r, 'expect.json')), `${r}/expect.json`);
  }
});

for (const r of routers) {
  const expect = JSON.parse(readFileSync(join(DIR, r, 'expect.json'), 'utf8')) as Expect;
  if (expect.ssdp !== undefined) {
    const want = expect.ssdp;
    test(`${r}: SSDP search response`, () => {
      const from = endpoint('192.168.1.1', 1900);
      const got = parseSsdpResponse(readFileSync(join(DIR, r, 'ssdp.http')), from);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k as keyof typeof got], v, k);
      assert.deepEqual(got.from, from);
    });
  }
  if (expect.description !== undefined) {
    const want = expect.description;
    test(`${r}: device description → WAN connection services`, () => {
      const location = checkLocation(want.location);
      const d = parseDeviceDescription(readFileSync(join(DIR, r, 'root.xml'), 'utf8'), location);
      assert.equal(d.deviceType, want.deviceType);
      assert.equal(d.friendlyName, want.friendlyName);
      assert.deepEqual(d.services.map((s) => ({ serviceType: s.serviceType, controlUrl: s.controlUrl.href })), want.services);
      assert.deepEqual(d.rejected, []);
    });
  }
}
