import { ResponseFlag } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { InFlight } from './in-flight.js';

/** Hears each request's start and end, and each event handled (the metrics, when they are on). */
export interface WorkObserver {
  requestStarted(entry: InFlight): void;
  /** `failed`: answered with an error. An entry stopped first (`cancelled`, see `stopCode`) ended otherwise. */
  requestEnded(entry: InFlight, failed: boolean): void;
  eventEnded(failed: boolean): void;
}

/**
 * What a provider's handlers are doing: requests being handled, per relay
 * session they came in on (each session numbers its own), and event handlers
 * running; a shutdown waits for them to be done.
 */
export class HandlerWork {
  private readonly requests = new Map<WebSocket, Map<number, InFlight>>();
  private runningEvents = 0;
  private idleWaiters: Array<() => void> = [];
  observer: WorkObserver | undefined;

  /** Books a request for `pattern`, which the caller waits for up to `timeoutMs`, as it starts. */
  start(id: number, via: WebSocket, pattern: string, timeoutMs: number): InFlight {
    const entry = new InFlight(pattern, timeoutMs);
    let books = this.requests.get(via);
    if (books === undefined) this.requests.set(via, (books = new Map<number, InFlight>()));
    books.set(id, entry);
    if (this.observer !== undefined) this.observer.requestStarted(entry);
    return entry;
  }

  /** A request is answered (`flags`: its last RESPONSE's), or stopped: out of the books. */
  settle(id: number, via: WebSocket, flags = 0): void {
    const books = this.requests.get(via);
    const entry = books?.get(id);
    if (books === undefined || entry === undefined) return;
    // A session's books stay until it is lost (cancelAll): not a new Map per request under sequential load.
    books.delete(id);
    entry.settle();
    if (this.observer !== undefined) this.observer.requestEnded(entry, (flags & ResponseFlag.ERROR) !== 0);
    entry.ended?.((flags & ResponseFlag.ERROR) !== 0);
    this.checkIdle();
  }

  /** The relay sent CANCEL (the caller left, or its deadline passed): the handler's signal aborts, its stream stops. */
  cancel(id: number, via: WebSocket): void {
    const entry = this.requests.get(via)?.get(id);
    if (entry === undefined) return;
    entry.callerCancelled();
    this.settle(id, via);
  }

  /** CREDIT: the caller of a flow-controlled stream grants it more values. */
  credit(id: number, via: WebSocket, credit: number): void {
    this.requests.get(via)?.get(id)?.subscription?.grant(credit);
  }

  /** A relay session is gone, and with it every caller on it (or, with no session named, all of them): stop their handlers. */
  cancelAll(via?: WebSocket): void {
    const sessions = via === undefined ? [...this.requests.keys()] : [via];
    for (const session of sessions) {
      for (const [id, entry] of [...(this.requests.get(session) ?? [])]) {
        entry.connectionLost();
        this.settle(id, session);
      }
      this.requests.delete(session);
    }
  }

  eventStarted(): void {
    this.runningEvents++;
  }

  /** `failed`: a handler failed, or the event could not be read. */
  eventDone(failed = false): void {
    this.runningEvents--;
    if (this.observer !== undefined) this.observer.eventEnded(failed);
    this.checkIdle();
  }

  /** No request or event handler is running. */
  get idle(): boolean {
    if (this.runningEvents !== 0) return false;
    for (const books of this.requests.values()) if (books.size !== 0) return false;
    return true;
  }

  /** Resolves once no request or event handler is running, or after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<void> {
    if (this.idle || timeoutMs <= 0) return Promise.resolve();
    return new Promise<void>(resolve => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.idleWaiters.push(done);
    });
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.idle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
