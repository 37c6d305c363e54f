// Layer rules of docs/architecture.md: a module imports only from its own layer or
// lower, other folders only through their index.ts, and never in a cycle.
const layers = [
  ['src/(wire|util)/'],
  ['src/net/'],
  ['src/stun/'],
  ['src/(nat|turn|portmap)/'],
  ['src/(rendezvous|punch)/'],
  ['src/(session|chat)/'],
  ['src/(cli/|index\\.ts)'],
];
const above = (i) => layers.slice(i + 1).flat().join('|');

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    ...layers.slice(0, -1).map((paths, i) => ({
      name: `layer-${i}-upward`,
      comment: `layer ${i} (${paths.join(', ')}) may not import a higher layer`,
      severity: 'error',
      from: { path: paths.join('|') },
      to: { path: above(i) },
    })),
    {
      name: 'net-sim-no-node',
      comment: 'the simulated world never touches real sockets, files, DNS, processes or OS randomness',
      severity: 'error',
      from: { path: '^src/net/sim/' },
      to: { path: '^src/net/node/|^(node:)?(dgram|net|tls|dns|dns/promises|fs|fs/promises|crypto|child_process|http|https|timers)$', dependencyTypes: ['local', 'core'] },
    },
    {
      name: 'protocols-no-node-io',
      comment: 'protocol code reaches sockets only through the net seam',
      severity: 'error',
      from: { path: '^src/(stun|nat|turn|portmap|rendezvous|punch|session|chat)/' },
      to: { path: '^(node:)?(dgram|net|tls)$', dependencyTypes: ['core'] },
    },
    {
      name: 'through-index',
      comment: 'another folder is reached only through its index.ts (its public face)',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/([^/]+)/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$', '^src/net/node/index\\.ts$', '^src/net/sim/index\\.ts$'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
