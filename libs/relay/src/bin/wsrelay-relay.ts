#!/usr/bin/env node
import { runCli } from '../standalone/cli.js';

runCli();
