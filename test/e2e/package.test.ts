// The published package as users meet it: `npm run build`'s tsc emits dist/, every
// subpath of package.json "exports" resolves there and loads under Node, and the bin runs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

interface PackageJson {
  readonly bin: Record<string, string>;
  readonly exports: Record<string, string | { readonly types: string; readonly default: string }>;
  readonly files: readonly string[];
}

test('tsc emits every export and the bin; each subpath loads and the bin answers --help', { timeout: 240_000 }, async (t) => {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as PackageJson;
  // Under node_modules, so that the emitted code resolves the package's dependencies.
  const cache = join(root, 'node_modules/.cache');
  await mkdir(cache, { recursive: true });
  const out = await mkdtemp(join(cache, 'natkit-dist-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', out], { cwd: root, timeout: 200_000 });
  const inDist = (path: string): string => join(out, path.replace(/^(\.\/)?dist\//, ''));

  const subpaths = Object.entries(pkg.exports).filter((e): e is [string, { types: string; default: string }] => typeof e[1] === 'object');
  assert.ok(subpaths.length >= 6, `expected the subpath exports, got ${subpaths.map(([k]) => k).join(', ')}`);
  for (const [name, target] of subpaths) {
    await access(inDist(target.types));
    const mod = (await import(pathToFileURL(inDist(target.default)).href)) as Record<string, unknown>;
    assert.ok(Object.keys(mod).length > 0, `${name} exports something`);
  }

  const bin = inDist(pkg.bin.natkit ?? '');
  const help = await run(process.execPath, [bin, '--help'], { timeout: 30_000 });
  assert.match(help.stdout, /^Commands:\n {2}check /m);
});
