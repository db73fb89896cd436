import { BadRequestException, Body, Controller, HttpCode, Post, ServiceUnavailableException } from '@nestjs/common';
import { ExampleTokens, PAGE_TOKEN_SECONDS } from './tokens.js';

/** Where the page finds the relay: set once the relay listens. */
export class PageConfig {
  relayUrl?: string;
}

/** What POST /token answers. */
export interface SignIn {
  token: string;
  relayUrl: string;
  expiresIn: number;
}

const NAME = /^[\p{L}\p{N} ._-]{1,32}$/u;

/**
 * The example's sign-in: a name in, a short-lived token out. A real app
 * would first authenticate the user (a session cookie, an OIDC login) and
 * derive the token's subject and permissions from who they are.
 */
@Controller()
export class TokenController {
  constructor(
    private readonly tokens: ExampleTokens,
    private readonly config: PageConfig,
  ) {}

  @Post('token')
  @HttpCode(200)
  async token(@Body() body: unknown): Promise<SignIn> {
    const name = nameOf(body);
    if (this.config.relayUrl === undefined) throw new ServiceUnavailableException('the relay is starting');
    return { token: await this.tokens.page(name), relayUrl: this.config.relayUrl, expiresIn: PAGE_TOKEN_SECONDS };
  }
}

function nameOf(body: unknown): string {
  const name = (body as { name?: unknown } | undefined)?.name;
  const trimmed = typeof name === 'string' ? name.trim() : '';
  if (!NAME.test(trimmed)) throw new BadRequestException('name: 1 to 32 letters, digits, spaces, ".", "_" or "-"');
  return trimmed;
}
