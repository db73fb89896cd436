export * from './codec.js';
export * from './constants.js';
export * from './errors.js';
export * from './frames.js';
export * from './msgpack-bounds.js';
export * from './subject.js';
export type { FrameAllocator } from './hot-write.js';
