import type { Logger } from '@nestjs/common';
import type { WsRelayToken, WsRelayTokenCarrier } from '../interfaces/ws-relay-options.interface.js';

/** Subprotocol offered next to an `access_token.*` one, for the relay to select (browsers require one). */
export const WSRELAY_PROTOCOL = 'wsrelay.v1';

/** How an upgrade carries a token. */
export interface CarriedToken {
  url: string;
  protocols?: string[];
  headers?: Record<string, string>;
}

/** Fetches the token for each attempt (a function is asked every time, so a refreshed one is used) and puts it where the relay reads it. */
export class TokenCarrier {
  constructor(
    private readonly token: WsRelayToken | undefined,
    private readonly carrier: WsRelayTokenCarrier,
  ) {}

  /** Whether a fresh token can be had (a function), for in-band refreshes. */
  get refreshable(): boolean {
    return typeof this.token === 'function';
  }

  fetch(): Promise<string | undefined> {
    const t = this.token;
    return typeof t === 'function' ? Promise.resolve(t()) : Promise.resolve(t);
  }

  /**
   * A fresh token for an in-band refresh (the relay warned that the current one
   * expires at `expiresAt`); undefined, said in `logger`, when there is none:
   * a fixed string cannot be refreshed, or the token function failed.
   */
  async refreshed(expiresAt: number, logger: Pick<Logger, 'warn' | 'error'>): Promise<string | undefined> {
    if (!this.refreshable) {
      const when = new Date(expiresAt).toISOString();
      logger.warn(`The relay's token expires at ${when} and the token option is a fixed string; the connection will be closed then.`);
      return undefined;
    }
    try {
      return await this.fetch();
    } catch (err) {
      logger.error(`Token refresh failed: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Where the upgrade to `url` goes, with `token` in the header, the query or a subprotocol. */
  carry(url: string, token: string | undefined): CarriedToken {
    if (!token) return { url };
    if (this.carrier === 'query') {
      const u = new URL(url);
      u.searchParams.set('token', token);
      return { url: u.toString() };
    }
    if (this.carrier === 'protocol') return { url, protocols: [WSRELAY_PROTOCOL, `access_token.${token}`] };
    return { url, headers: { authorization: `Bearer ${token}` } };
  }
}
