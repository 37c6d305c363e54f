// Lint: typescript-eslint with type information (floating and misused promises are
// errors), plus the promise plugin. Layer rules live in .dependency-cruiser.cjs.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import promise from 'eslint-plugin-promise';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/native/**', 'eslint.config.js', '.dependency-cruiser.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  promise.configs['flat/recommended'],
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'promise/always-return': 'off',
      'promise/catch-or-return': 'off',
      'no-restricted-syntax': ['error',
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'Inject randomness through Env.' },
      ],
    },
  },
  {
    // node:test's test()/describe() return promises the runner itself awaits.
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }],
      }],
    },
  },
  {
    // Sans-I/O protocol cores and the seam itself: no wall clock, no timers, no sockets,
    // no files (the system's routing table is read by net/node).
    files: ['src/wire/**', 'src/util/**', 'src/stun/**', 'src/nat/**', 'src/portmap/**', 'src/turn/**', 'src/rendezvous/**', 'src/punch/**', 'src/session/**', 'src/chat/**'],
    rules: {
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'Use the injected Clock.' },
        { name: 'setInterval', message: 'Use the injected Clock.' },
      ],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Use the injected Clock.' },
        { object: 'performance', property: 'now', message: 'Use the injected Clock.' },
      ],
      'no-restricted-imports': ['error', {
        paths: [
          'node:dgram', 'node:tls', 'dgram', 'tls',
          { name: 'node:fs', message: 'Files are read in net/node.' },
          { name: 'node:fs/promises', message: 'Files are read in net/node.' },
          { name: 'node:net', importNames: ['createServer', 'createConnection', 'connect', 'Socket', 'Server'], message: 'Sockets come from the Network in Env.' },
        ],
      }],
    },
  },
  {
    // The simulated world (net/sim): virtual time, seeded randomness and in-memory packets
    // only. setImmediate (node:timers/promises) is allowed: it only lets promise callbacks
    // settle between events and never carries time.
    files: ['src/net/sim/**'],
    rules: {
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'Schedule on the SimClock.' },
        { name: 'setInterval', message: 'Schedule on the SimClock.' },
        { name: 'Date', message: 'Time is the SimClock\'s.' },
        { name: 'performance', message: 'Time is the SimClock\'s.' },
        { name: 'process', message: 'The simulation touches nothing of the process.' },
        { name: 'crypto', message: 'Randomness is the world\'s SimRandom.' },
      ],
      'no-restricted-imports': ['error', {
        paths: [
          'node:dgram', 'node:net', 'node:tls', 'node:dns', 'node:dns/promises', 'node:fs', 'node:fs/promises', 'node:crypto',
          'node:child_process', 'node:http', 'node:https', 'dgram', 'net', 'tls', 'dns', 'fs', 'crypto', 'child_process',
          { name: 'node:timers', message: 'Schedule on the SimClock.' },
          { name: 'node:timers/promises', importNames: ['setTimeout', 'setInterval', 'scheduler'], message: 'Schedule on the SimClock.' },
        ],
        patterns: [{ group: ['**/node/*', '**/node/index.ts'], message: 'net/sim never uses real sockets (net/node).' }],
      }],
    },
  },
);
