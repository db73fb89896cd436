import { Module } from '@nestjs/common';
import { RelayAuthService } from './auth/relay-auth.service.js';
import { RelayCluster } from './cluster/relay-cluster.js';
import { createCluster } from './core/create-cluster.js';
import { RelayCore } from './core/relay-core.js';
import { FramePolicy } from './gateway/frame-policy.js';
import { FramePolicyGuard } from './gateway/frame-policy.guard.js';
import { Refusals } from './gateway/refusals.js';
import { RelayExceptionFilter } from './gateway/relay-exception.filter.js';
import { RelayGateway } from './gateway/relay.gateway.js';
import type { ResolvedRelayOptions } from './interfaces/relay-options.interface.js';
import { RelayLog } from './logs/relay-log.js';
import { RelayMetrics } from './metrics/relay-metrics.js';
import { RelayTally } from './observe/relay-tally.js';
import { RELAY_OPTIONS } from './relay.constants.js';
import { ConfigurableRelayModule, RELAY_MODULE_OPTIONS } from './relay.module-definition.js';
import { resolveRelayOptions } from './relay.options.js';

/**
 * The relay as a Nest module: `RelayModule.forRoot({ path, maxPayloadBytes, ... })`
 * or `forRootAsync({ useFactory, inject })`. The app must use `RelayWsAdapter`.
 * What the relay does is counted (RelayMetrics, a Prometheus registry of its
 * own) and its lifecycle logged (RelayLog) through one observer, RelayTally.
 */
@Module({
  providers: [
    { provide: RELAY_OPTIONS, useFactory: resolveRelayOptions, inject: [RELAY_MODULE_OPTIONS] },
    { provide: RelayTally, useFactory: () => new RelayTally() },
    RelayAuthService,
    { provide: RelayCluster, useFactory: createCluster, inject: [RELAY_OPTIONS, RelayTally] },
    {
      provide: RelayCore,
      useFactory: (o: ResolvedRelayOptions, auth: RelayAuthService, cluster: RelayCluster, tally: RelayTally) =>
        new RelayCore(o, auth, cluster, tally),
      inject: [RELAY_OPTIONS, RelayAuthService, RelayCluster, RelayTally],
    },
    { provide: FramePolicy, useFactory: (core: RelayCore) => new FramePolicy(core.membership), inject: [RelayCore] },
    {
      provide: Refusals,
      useFactory: (core: RelayCore, o: ResolvedRelayOptions, tally: RelayTally) =>
        new Refusals(core.replies, o.maxBadFrames, s => core.membership.nodeOf(s) !== undefined, tally),
      inject: [RelayCore, RELAY_OPTIONS, RelayTally],
    },
    {
      provide: RelayMetrics,
      useFactory: (tally: RelayTally, core: RelayCore) => new RelayMetrics(tally, core),
      inject: [RelayTally, RelayCore],
    },
    {
      provide: RelayLog,
      useFactory: (tally: RelayTally) => {
        const log = new RelayLog();
        tally.listen(log);
        return log;
      },
      inject: [RelayTally],
    },
    RelayGateway,
    FramePolicyGuard,
    RelayExceptionFilter,
  ],
  exports: [RelayCore, RelayAuthService, RelayCluster, RELAY_OPTIONS, RelayMetrics, RelayTally],
})
export class RelayModule extends ConfigurableRelayModule {}
