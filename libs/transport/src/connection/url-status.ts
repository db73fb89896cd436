/** A relay URL's state, as `relayStatus` reports it. */
export type WsRelayUrlStatus = 'connecting' | 'connected' | 'error' | 'not_connected';

/** Each relay URL's state, in configuration order; `onChange` hears of each change. */
export class UrlStatus {
  private readonly byUrl = new Map<string, WsRelayUrlStatus>();

  constructor(
    urls: readonly string[],
    private readonly onChange: (url: string, status: WsRelayUrlStatus) => void,
  ) {
    for (const url of urls) this.byUrl.set(url, 'not_connected');
  }

  set(url: string, status: WsRelayUrlStatus): void {
    if (this.byUrl.get(url) === status) return;
    this.byUrl.set(url, status);
    this.onChange(url, status);
  }

  /** Every URL back to `not_connected`. */
  reset(): void {
    for (const url of this.byUrl.keys()) this.set(url, 'not_connected');
  }

  entries(): IterableIterator<[string, WsRelayUrlStatus]> {
    return this.byUrl.entries();
  }
}
