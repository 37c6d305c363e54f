// The package as users install it: `tsc -p tsconfig.build.json` into a fresh directory
// under node_modules/.cache (so the emitted code resolves the package's dependencies).
// The NAT-check benchmark times this JavaScript, not the .ts sources, whose type
// stripping at start-up no user pays; the package test loads every export from it.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A built copy of the package; `path()` maps a package.json path (`./dist/…`) into it. */
export interface BuiltPackage {
  readonly dir: string;
  path(packagePath: string): string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Builds the package; dispose removes it. Rejects with tsc's output when the build fails. */
export async function buildPackage(options: { readonly timeoutMs?: number } = {}): Promise<BuiltPackage> {
  const cache = join(ROOT, 'node_modules/.cache');
  await mkdir(cache, { recursive: true });
  const dir = await mkdtemp(join(cache, 'natkit-dist-'));
  try {
    await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', dir], {
      cwd: ROOT, timeout: options.timeoutMs ?? 200_000,
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    path: (packagePath) => join(dir, packagePath.replace(/^(\.\/)?dist\//, '')),
    [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }),
  };
}
