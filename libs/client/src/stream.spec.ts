import { describe, expect, it, jest } from '@jest/globals';
import { ResponseStream } from './stream.js';

function stream(window?: number) {
  const source = { grant: jest.fn<(credit: number) => void>(), stop: jest.fn<() => void>() };
  const s = new ResponseStream<number>(source);
  if (window !== undefined) s.flowControl(window);
  return { s, source };
}

describe('ResponseStream', () => {
  it('hands values in order, to readers waiting and to readers to come, then completes', async () => {
    const { s } = stream();
    const first = s.next();
    s.push(1);
    s.push(2);
    s.close();
    expect(await first).toEqual({ done: false, value: 1 });
    expect(await s.next()).toEqual({ done: false, value: 2 });
    expect(await s.next()).toEqual({ done: true, value: undefined });
  });

  it('grants credit half a window at a time, as the reader takes values (not as they arrive)', async () => {
    const { s, source } = stream(8);
    for (let i = 0; i < 8; i++) s.push(i);
    expect(source.grant).not.toHaveBeenCalled();
    for (let i = 0; i < 3; i++) await s.next();
    expect(source.grant).not.toHaveBeenCalled();
    await s.next();
    expect(source.grant.mock.calls).toEqual([[4]]);
    for (let i = 0; i < 4; i++) await s.next();
    expect(source.grant.mock.calls).toEqual([[4], [4]]);
    // A window of 1 grants after each value.
    const one = stream(1);
    one.s.push(1);
    await one.s.next();
    expect(one.source.grant.mock.calls).toEqual([[1]]);
  });

  it('grants nothing without flow control, or once the stream is over', async () => {
    const { s, source } = stream();
    for (let i = 0; i < 100; i++) s.push(i);
    for (let i = 0; i < 100; i++) await s.next();
    const over = stream(2);
    over.s.push(1);
    over.s.push(2);
    over.s.close();
    await over.s.next();
    await over.s.next();
    expect([source.grant, over.source.grant].map(g => g.mock.calls.length)).toEqual([0, 0]);
  });

  it('fails after the values that came before the error, or at once when told to discard them', async () => {
    const { s } = stream();
    s.push(1);
    s.close(new Error('boom'));
    expect(await s.next()).toEqual({ done: false, value: 1 });
    await expect(s.next()).rejects.toThrow('boom');
    const discarding = stream();
    discarding.s.push(1);
    discarding.s.close(new Error('aborted'), true);
    await expect(discarding.s.next()).rejects.toThrow('aborted');
  });

  it('stops its source when the reader leaves early (break), and only then', async () => {
    const { s, source } = stream();
    s.push(1);
    for await (const v of s) if (v === 1) break;
    expect(source.stop).toHaveBeenCalledTimes(1);
    expect(await s.next()).toEqual({ done: true, value: undefined });
    const done = stream();
    done.s.close();
    for await (const _ of done.s) throw new Error('no values expected');
    await done.s.return();
    expect(done.source.stop).not.toHaveBeenCalled();
  });
});
