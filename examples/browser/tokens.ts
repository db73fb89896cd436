import { SignJWT } from 'jose';

/** What a signed-in page may do: call three patterns, chat (not the provider's `chat.notice`), and listen to orders and chat. */
export const PAGE_PERMISSIONS = {
  call: ['greet', 'count', 'slow'],
  publish: ['chat.message'],
  subscribe: ['orders.>', 'chat.>'],
};

/** What the example's provider may do: serve the page's patterns and publish what the page listens to. */
export const PROVIDER_PERMISSIONS = {
  serve: ['greet', 'count', 'slow'],
  publish: ['orders.>', 'chat.>'],
};

/** A page's token lives a few minutes; the page fetches a new one when the relay warns of expiry. */
export const PAGE_TOKEN_SECONDS = 300;
const PROVIDER_TOKEN_SECONDS = 3600;

/** Mints the example's HS256 tokens with the secret the relay verifies them with. */
export class ExampleTokens {
  constructor(private readonly secret: Uint8Array) {}

  /** A passive client's token (role 'client'): it may call and emit, and subscribe where `perms.subscribe` allows. */
  page(name: string): Promise<string> {
    return this.sign({ role: 'client', perms: PAGE_PERMISSIONS }, `user:${name}`, PAGE_TOKEN_SECONDS);
  }

  /** The provider's token (role 'server'): it serves and publishes. */
  provider(): Promise<string> {
    return this.sign({ role: 'server', perms: PROVIDER_PERMISSIONS }, 'service:browser-example', PROVIDER_TOKEN_SECONDS);
  }

  private sign(claims: Record<string, unknown>, subject: string, seconds: number): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime(`${seconds}s`)
      .sign(this.secret);
  }
}
