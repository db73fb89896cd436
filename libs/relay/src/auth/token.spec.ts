import type { IncomingMessage } from 'node:http';
import { Permissions } from './permissions.js';
import { selectProtocol, tokenOf } from './token.js';

const req = (url: string, headers: Record<string, string> = {}) => ({ url, headers }) as unknown as IncomingMessage;

describe('tokenOf', () => {
  it('reads a Bearer header first, then ?token=, then an access_token subprotocol', () => {
    expect(tokenOf(req('/relay', { authorization: 'Bearer h.h.h' }))).toBe('h.h.h');
    expect(tokenOf(req('/relay', { authorization: 'bearer   h.h.h ' }))).toBe('h.h.h');
    expect(tokenOf(req('/relay?x=1&token=q.q.q'))).toBe('q.q.q');
    expect(tokenOf(req('/relay', { 'sec-websocket-protocol': 'wsrelay.v1, access_token.p.p.p' }))).toBe('p.p.p');
    expect(tokenOf(req('/relay?token=q', { authorization: 'Bearer h' }))).toBe('h');
  });

  it('finds nothing in a Basic header, an empty query token or a bare prefix', () => {
    expect(tokenOf(req('/relay', { authorization: 'Basic abc' }))).toBeUndefined();
    expect(tokenOf(req('/relay?token='))).toBeUndefined();
    expect(tokenOf(req('/relay', { 'sec-websocket-protocol': 'access_token.' }))).toBeUndefined();
  });
});

describe('selectProtocol', () => {
  it('never selects a token subprotocol', () => {
    expect(selectProtocol(new Set(['access_token.x', 'wsrelay.v1']))).toBe('wsrelay.v1');
    expect(selectProtocol(new Set(['access_token.x']))).toBe(false);
  });
});

describe('Permissions', () => {
  it('allows only listed subjects, with wildcards, and nothing for an unlisted action', () => {
    const p = new Permissions({ call: ['orders.*', 'health'], subscribe: ['audit.>'] });
    expect(p.allows('call', 'orders.get')).toBe(true);
    expect(p.allows('call', 'orders.get')).toBe(true); // cached
    expect(p.allows('call', 'orders.eu.get')).toBe(false);
    expect(p.allows('call', 'health')).toBe(true);
    expect(p.allows('publish', 'orders.get')).toBe(false);
    expect(p.allows('serve', 'health')).toBe(false);
    expect(p.allows('subscribe', 'audit.*.login')).toBe(true);
    expect(p.allows('subscribe', '>')).toBe(false);
  });
});
