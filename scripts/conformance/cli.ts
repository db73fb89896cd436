/**
 * `npm run conformance -- ws://host:port/relay [--token <jwt>]`: checks a
 * relay (of any language) against docs/protocol.md with raw frames, playing
 * providers and callers itself. One line per scenario (with the reason when
 * it fails), then a summary; exit code 0 only when none failed.
 *
 *   --token <jwt>      a token for a server connection, used for every connection
 *   --wait-ms <ms>     how long each frame the relay owes may take (default 5000)
 *   --only <text>      only scenarios whose id or name contains it (repeatable)
 */
import { parseArgs } from 'node:util';
import { conforms, DEFAULT_WAIT_MS, formatResult, runConformance, summary } from './scenarios.js';

const USAGE = 'usage: npm run conformance -- <ws://host:port/relay> [--token <jwt>] [--wait-ms <ms>] [--only <text>]...';

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      token: { type: 'string' },
      'wait-ms': { type: 'string' },
      only: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const [url, ...extra] = positionals;
  if (url === undefined || extra.length > 0 || !/^wss?:\/\//.test(url)) {
    console.error(USAGE);
    return 2;
  }
  const waitTimeoutMs = Number(values['wait-ms'] ?? DEFAULT_WAIT_MS);
  if (!Number.isInteger(waitTimeoutMs) || waitTimeoutMs <= 0) {
    console.error(`--wait-ms must be a positive integer, got ${values['wait-ms']}`);
    return 2;
  }
  console.log(`wsrelay conformance against ${url}${values.token === undefined ? '' : ' (with a token)'}`);
  const results = await runConformance(url, {
    token: values.token,
    waitTimeoutMs,
    only: values.only,
    onResult: r => console.log(formatResult(r)),
  });
  console.log(summary(results));
  return conforms(results) ? 0 : 1;
}

main().then(
  code => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  },
);
