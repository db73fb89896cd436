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
import { RELAY_OPTIONS } from './relay.constants.js';
import { ConfigurableRelayModule, RELAY_MODULE_OPTIONS } from './relay.module-definition.js';
import { resolveRelayOptions } from './relay.options.js';

/**
 * The relay as a Nest module: `RelayModule.forRoot({ path, maxPayloadBytes, ... })`
 * or `forRootAsync({ useFactory, inject })`. The app must use `RelayWsAdapter`.
 */
@Module({
  providers: [
    { provide: RELAY_OPTIONS, useFactory: resolveRelayOptions, inject: [RELAY_MODULE_OPTIONS] },
    RelayAuthService,
    { provide: RelayCluster, useFactory: createCluster, inject: [RELAY_OPTIONS] },
    {
      provide: RelayCore,
      useFactory: (o: ResolvedRelayOptions, auth: RelayAuthService, cluster: RelayCluster) => new RelayCore(o, auth, cluster),
      inject: [RELAY_OPTIONS, RelayAuthService, RelayCluster],
    },
    { provide: FramePolicy, useFactory: (core: RelayCore) => new FramePolicy(core.membership), inject: [RelayCore] },
    {
      provide: Refusals,
      useFactory: (core: RelayCore, o: ResolvedRelayOptions) =>
        new Refusals(core.replies, o.maxBadFrames, s => core.membership.nodeOf(s) !== undefined),
      inject: [RelayCore, RELAY_OPTIONS],
    },
    RelayGateway,
    FramePolicyGuard,
    RelayExceptionFilter,
  ],
  exports: [RelayCore, RelayAuthService, RelayCluster, RELAY_OPTIONS],
})
export class RelayModule extends ConfigurableRelayModule {}
