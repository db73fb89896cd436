#!/bin/sh
# Installs a relay deployment into TARGET from the tarballs and
# relay-deployment.json that pack.mjs wrote into PACKS: production
# dependencies only. Further arguments go to `npm install` (for example
# --omit=optional leaves out ioredis, which only a Redis cluster needs).
#
#   sh scripts/deploy/install-relay.sh PACKS TARGET [npm install flags]
#
# The Dockerfile and the test suite both run it; the relay then starts with
#   node TARGET/node_modules/@wsrelay/relay/dist/bin/wsrelay-relay.js
set -eu
packs=$1
target=$2
shift 2
mkdir -p "$target"
cp "$packs"/relay-deployment.json "$target"/package.json
cp "$packs"/wsrelay-relay-*.tgz "$packs"/wsrelay-protocol-*.tgz "$target"/
cd "$target"
npm install --omit=dev --no-audit --no-fund --no-update-notifier "$@"
rm -f wsrelay-*.tgz
