import { Module } from '@nestjs/common';
import { RelayExceptionFilter } from './filters/relay-exception.filter.js';
import { RelayAuthService } from './auth/relay-auth.service.js';
import { RelayCluster } from './cluster/relay-cluster.js';
import { EstablishedSessionGuard } from './guards/established-session.guard.js';
import { PermissionGuard } from './guards/permission.guard.js';
import { ServerConnectionGuard } from './guards/server-connection.guard.js';
import { EventAckInterceptor } from './interceptors/event-ack.interceptor.js';
import type { RelayModuleOptions } from './interfaces/relay-options.interface.js';
import { RELAY_OPTIONS, resolveRelayOptions } from './relay.constants.js';
import { RelayGateway } from './relay.gateway.js';
import { ConfigurableRelayModule, RELAY_MODULE_OPTIONS } from './relay.module-definition.js';
import { RelayRouter } from './routing/relay-router.js';

/**
 * The relay as a Nest module: `RelayModule.forRoot({ path, maxPayloadBytes, ... })`
 * or `forRootAsync({ useFactory, inject })`. The app must use `RelayWsAdapter`.
 */
@Module({
  providers: [
    {
      provide: RELAY_OPTIONS,
      useFactory: (options: RelayModuleOptions) => resolveRelayOptions(options),
      inject: [RELAY_MODULE_OPTIONS],
    },
    RelayAuthService,
    RelayCluster,
    RelayRouter,
    RelayGateway,
    EstablishedSessionGuard,
    ServerConnectionGuard,
    PermissionGuard,
    EventAckInterceptor,
    RelayExceptionFilter,
  ],
  exports: [RelayRouter, RelayAuthService, RelayCluster, RELAY_OPTIONS],
})
export class RelayModule extends ConfigurableRelayModule {}
