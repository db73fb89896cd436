/**
 * How a bench subscriber reports what it received (no Nest here, so the raw
 * peers can use it too).
 *
 * - Counts: the subscriber notes, for every millisecond in which it handled
 *   an event, how many it had handled before. After a measurement window the
 *   bench writes "COUNT <seq> <t0> <t1>" (epoch ms) to the process's stdin and
 *   it prints "COUNT <seq> <n0> <n1>": the events handled by t0 and by t1. So
 *   delivered/s is counted where the events are handled, at the moment they
 *   are, even when a backlog keeps the process from reading stdin for a
 *   second (a subscriber works through a buffered backlog in one go). The
 *   process exits when stdin closes (the bench is gone).
 * - Credit: for transports whose emit() completes before anyone received the
 *   event (Nest TCP writes to its socket, Nest NATS to its client buffer), a
 *   publisher bounds what it has in flight by what the subscriber has seen.
 *   The subscriber serves its running count over a plain TCP socket: one
 *   "<delivered>\n" line on connect, then at least every CREDIT_STEP events
 *   and on a short timer.
 */
import { fstatSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';

const CREDIT_STEP = 100;
const CREDIT_FLUSH_MS = 2;
/** Millisecond entries kept (at most one per millisecond with traffic): well over a minute. */
const KEPT_ENTRIES = 200_000;

/** A running count of handled events with the time each millisecond's first one was handled. */
export class DeliveryLog {
  count = 0;
  private times: number[] = [];
  /** counts[i]: events handled before times[i]. */
  private before: number[] = [];
  private lastMs = 0;

  hit(): void {
    const now = Date.now();
    if (now !== this.lastMs) {
      this.lastMs = now;
      this.times.push(now);
      this.before.push(this.count);
      if (this.times.length > KEPT_ENTRIES) {
        this.times = this.times.slice(KEPT_ENTRIES / 2);
        this.before = this.before.slice(KEPT_ENTRIES / 2);
      }
    }
    this.count++;
  }

  /** Events handled by the end of millisecond `t` (epoch ms). */
  countAt(t: number): number {
    let lo = 0;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.times[mid] > t) hi = mid;
      else lo = mid + 1;
    }
    return lo < this.times.length ? this.before[lo] : this.count;
  }
}

/** Answers the bench's COUNT requests on stdin; exits when the bench closes stdin. */
export function answerCounts(log: DeliveryLog): void {
  // Only a pipe from the bench counts; started by hand or with stdin ignored, the process stays up.
  const piped = fstatSync(0).isFIFO();
  createInterface({ input: process.stdin })
    .on('line', line => {
      const m = /^COUNT (\d+) (\d+) (\d+)$/.exec(line.trim());
      if (m !== null) console.log(`COUNT ${m[1]} ${log.countAt(Number(m[2]))} ${log.countAt(Number(m[3]))}`);
    })
    .on('close', () => {
      if (piped) process.exit(0);
    });
}

export interface CreditServer {
  port: number;
  /** Call once per event received, after counting it. */
  onDelivered(delivered: number): void;
}

export async function startCreditServer(delivered: () => number): Promise<CreditServer> {
  const sockets = new Set<Socket>();
  let lastSent = -1;
  const flush = () => {
    const n = delivered();
    if (n === lastSent) return;
    lastSent = n;
    for (const s of sockets) s.write(`${n}\n`);
  };
  // The timer runs only while a publisher is connected, so an idle provider is not woken.
  let timer: NodeJS.Timeout | undefined;
  const server = createServer(socket => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.write(`${delivered()}\n`);
    timer ??= setInterval(flush, CREDIT_FLUSH_MS);
    socket.on('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0) {
        clearInterval(timer);
        timer = undefined;
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    onDelivered: n => {
      if (n - lastSent >= CREDIT_STEP && sockets.size > 0) flush();
    },
  };
}
