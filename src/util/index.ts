// Layer 0: errors, IP addresses, small helpers shared by every layer.
export * from './errors.ts';
export * from './ip.ts';
export * from './rate-limiter.ts';
export * from './keyed-slots.ts';
export * from './prometheus.ts';
