/** Patterns one memo keeps per frame kind before it starts over (a peer chooses them). */
const MAX_REMEMBERED_PATTERNS = 256;

/**
 * What the gateway's guards have let through on one connection, so the
 * adapter can route the next frame of the same kind (and pattern) without
 * running Nest's per-message pipeline again.
 *
 * Only a gateway handler writes here, and a handler runs only after every
 * guard on it passed: the guards stay the authority, this remembers their
 * verdict. That is sound because the hot frames' guards decide on the
 * connection's identity and the frame's kind and pattern alone; the memo is
 * cleared whenever the identity changes (an in-band token refresh).
 */
export class GuardMemo {
  private calls: Set<string> | undefined;
  private publishes: Set<string> | undefined;
  /** RESPONSE passed (a server connection with an established session). */
  answers = false;
  /** CANCEL passed (an established session). */
  cancels = false;

  allowsCall(pattern: string): boolean {
    return this.calls?.has(pattern) === true;
  }

  allowsPublish(pattern: string): boolean {
    return this.publishes?.has(pattern) === true;
  }

  rememberCall(pattern: string): void {
    this.calls = remember(this.calls, pattern);
  }

  rememberPublish(pattern: string): void {
    this.publishes = remember(this.publishes, pattern);
  }

  clear(): void {
    this.calls = undefined;
    this.publishes = undefined;
    this.answers = false;
    this.cancels = false;
  }
}

function remember(set: Set<string> | undefined, pattern: string): Set<string> {
  if (set === undefined || set.size >= MAX_REMEMBERED_PATTERNS) set = new Set();
  set.add(pattern);
  return set;
}
