// The published package as users meet it: `npm run build`'s tsc emits dist/, every
// subpath of package.json "exports" resolves there and loads under Node, and the bin runs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { buildPackage } from '../../bench/lib/build.ts';

interface PackageJson {
  readonly bin: Record<string, string>;
  readonly exports: Record<string, string | { readonly types: string; readonly default: string }>;
}

test('tsc emits every export and the bin; each subpath loads and the bin answers --help', { timeout: 240_000 }, async () => {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as PackageJson;
  await using built = await buildPackage();

  const subpaths = Object.entries(pkg.exports).filter((e): e is [string, { types: string; default: string }] => typeof e[1] === 'object');
  assert.ok(subpaths.length >= 6, `expected the subpath exports, got ${subpaths.map(([k]) => k).join(', ')}`);
  for (const [name, target] of subpaths) {
    await access(built.path(target.types));
    const mod = (await import(pathToFileURL(built.path(target.default)).href)) as Record<string, unknown>;
    assert.ok(Object.keys(mod).length > 0, `${name} exports something`);
  }

  const help = await promisify(execFile)(process.execPath, [built.path(pkg.bin.natkit ?? ''), '--help'], { timeout: 30_000 });
  assert.match(help.stdout, /^Commands:\n {2}chat /m);
});
