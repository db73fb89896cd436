import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RelayModuleOptions } from './interfaces/relay-options.interface.js';

export const { ConfigurableModuleClass: ConfigurableRelayModule, MODULE_OPTIONS_TOKEN: RELAY_MODULE_OPTIONS } =
  new ConfigurableModuleBuilder<RelayModuleOptions>().setClassMethodName('forRoot').build();
