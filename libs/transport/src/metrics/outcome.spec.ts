import { describe, expect, it } from '@jest/globals';
import { RelayError, RelayErrorCode } from '@wsrelay/protocol';
import { outcomeOf } from './outcome.js';

describe('outcomeOf: the bounded outcome label of a failed call or emit', () => {
  it('is the code of a RelayError', () => {
    expect(outcomeOf(new RelayError(RelayErrorCode.MICROSERVICE_OFFLINE, 'none'))).toBe('MICROSERVICE_OFFLINE');
    expect(outcomeOf(new RelayError(RelayErrorCode.RELAY_UNAVAILABLE, 'down'))).toBe('RELAY_UNAVAILABLE');
  });

  it('is the code of an error a provider answered with (a stream that overflowed)', () => {
    expect(outcomeOf({ status: 'error', code: RelayErrorCode.SLOW_CONSUMER, message: 'too slow' })).toBe('SLOW_CONSUMER');
  });

  it('is relay_error for a code this version does not know, which stays out of the label values', () => {
    expect(outcomeOf(RelayError.fromWire({ code: 'SOMETHING_NEW', message: 'from a newer relay' }))).toBe('relay_error');
  });

  it('is handler_error for what a handler answered with, client_error for an Error raised here', () => {
    expect(outcomeOf({ status: 'error', message: 'boom' })).toBe('handler_error');
    expect(outcomeOf('boom')).toBe('handler_error');
    expect(outcomeOf({ code: 'E_MINE' })).toBe('handler_error');
    expect(outcomeOf(new TypeError('serializer failed'))).toBe('client_error');
    expect(outcomeOf(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe('client_error');
  });
});
