import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';

/** An HTTPS server's request socket is the TLS socket over the TCP one its 'connection' event gave. */
type RequestSocket = Socket & { _parent?: Socket };

/**
 * Closes an HTTP connection whose first request (a WebSocket upgrade or a
 * plain request such as `/status`) has not arrived whole within `timeoutMs`
 * of the connection opening. Node alone holds a half-sent request for its
 * `headersTimeout` (60 s), checked every 30 s: a slow sender could keep a
 * socket for up to 90 s. Once the request has arrived the timer is gone, so
 * established WebSockets and slow bodies are not affected.
 */
export class UpgradeDeadline {
  private readonly timers = new WeakMap<Socket, NodeJS.Timeout>();
  private readonly servers = new WeakSet<HttpServer>();

  constructor(private readonly timeoutMs: number) {}

  /** Watches every connection of `server` (once per server). */
  attach(server: HttpServer | undefined): void {
    if (server === undefined || typeof server.on !== 'function' || this.servers.has(server)) return;
    this.servers.add(server);
    server.on('connection', (socket: Socket) => this.start(socket));
    server.on('request', (req: IncomingMessage) => this.met(req.socket));
    server.on('upgrade', (req: IncomingMessage) => this.met(req.socket));
  }

  private start(socket: Socket): void {
    const timer = setTimeout(() => {
      this.timers.delete(socket);
      socket.destroy();
    }, this.timeoutMs);
    timer.unref();
    this.timers.set(socket, timer);
    socket.once('close', () => this.met(socket));
  }

  private met(socket: RequestSocket): void {
    const tcp = socket._parent ?? socket;
    const timer = this.timers.get(tcp);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.timers.delete(tcp);
  }
}
