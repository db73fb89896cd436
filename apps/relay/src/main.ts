// The relay as an app of this repository: what the `wsrelay-relay`
// executable of @wsrelay/relay runs, configured by RELAY_* environment
// variables and drained on SIGTERM.
import { Logger } from '@nestjs/common';
import { runRelay } from '@wsrelay/relay';

runRelay().catch((err: unknown) => {
  new Logger('Relay').error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
