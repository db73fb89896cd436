import { describe, expect, it } from '@jest/globals';
import { endpointPaths } from './relay-endpoints.js';

describe('endpointPaths', () => {
  it('defaults every endpoint to its usual path', () => {
    expect(endpointPaths({})).toEqual({
      status: '/status',
      detail: '/status/detail',
      livez: '/livez',
      readyz: '/readyz',
      metrics: '/metrics',
    });
  });

  it('takes false for none, and other paths', () => {
    expect(endpointPaths({ metricsPath: false, livezPath: '/healthz', readyzPath: false })).toMatchObject({
      metrics: false,
      livez: '/healthz',
      readyz: false,
    });
  });

  it('refuses a path that is not one, and two endpoints on one path, naming the options', () => {
    expect(() => endpointPaths({ metricsPath: 'metrics' })).toThrow(/metricsPath must be a path starting with "\/"/);
    expect(() => endpointPaths({ readyzPath: '/status' })).toThrow(/statusPath and readyzPath are both "\/status"/);
    expect(() => endpointPaths({ metricsPath: '/livez' })).toThrow(/livezPath and metricsPath are both "\/livez"/);
    // Endpoints turned off do not collide.
    expect(() => endpointPaths({ statusPath: false, readyzPath: false })).not.toThrow();
  });

  it('refuses a token that could not be sent as a Bearer header', () => {
    expect(() => endpointPaths({ metricsToken: '' })).toThrow(/metricsToken must be a non-empty string without spaces/);
    expect(() => endpointPaths({ metricsToken: 'two words' })).toThrow(/metricsToken/);
    expect(() => endpointPaths({ statusToken: ' ' })).toThrow(/statusToken/);
  });
});
