// README.md promises two commands and a library example; keep them true.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';

const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');

test('README starts with the set-up-and-run and set-up-and-test commands', async () => {
  const first = /```sh\n([^`]*)```/.exec(readme)?.[1] ?? '';
  const commands = first.trim().split('\n').map((l) => l.replace(/\s+#.*$/, '').trim());
  assert.deepEqual(commands, ['npm ci && npm run demo', 'npm ci && npm test']);
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.demo && pkg.scripts.test, 'both scripts exist');
});

test('the README library example is examples/readme-library.ts (which CI typechecks)', async () => {
  const snippet = /```ts\n([^`]*)```/.exec(readme)?.[1] ?? '';
  const example = await readFile(new URL('../../examples/readme-library.ts', import.meta.url), 'utf8');
  const body = example.split('\n').slice(1).join('\n').replace("from '../src/index.ts'", "from 'natkit'");
  assert.equal(body, snippet);
});
