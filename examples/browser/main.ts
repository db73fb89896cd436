// npm run example:browser: builds the page, starts the example, prints where to open it.
import { fileURLToPath } from 'node:url';
import { buildPage } from './build-page.js';
import { DEFAULT_PORT, DEFAULT_RELAY_PORT, startBrowserExample } from './example.js';

const pageDir = fileURLToPath(new URL('./dist', import.meta.url));
await buildPage(pageDir);
const example = await startBrowserExample({
  pageDir,
  port: Number(process.env.PORT ?? DEFAULT_PORT),
  relayPort: Number(process.env.RELAY_PORT ?? DEFAULT_RELAY_PORT),
  logger: ['log', 'warn', 'error'],
});
console.log(`\nOpen ${example.url} (relay: ${example.relay.url}; Ctrl-C stops)\n`);

let closing = false;
const stop = () => {
  if (closing) process.exit(1); // a second signal: at once
  closing = true;
  example.close().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stop).on('SIGTERM', stop);
