# The relay as a container image: `docker build -t wsrelay-relay .`
# Its steps are scripts the test suite runs too (scripts/deploy): CI has no
# Docker engine, so it runs the same pack, install and start steps without
# building this image.

# --- build: compile the packages and pack them as they would be published
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund \
 && npm run build:packages \
 && node scripts/deploy/pack.mjs /packs

# --- runtime: the packed relay and its production dependencies, nothing else
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    NO_COLOR=1 \
    RELAY_HOST=0.0.0.0 \
    RELAY_PORT=8787
WORKDIR /app
COPY --from=build /packs /packs
COPY scripts/deploy/install-relay.sh /usr/local/bin/install-relay.sh
RUN sh /usr/local/bin/install-relay.sh /packs /app \
 && rm -rf /packs /usr/local/bin/install-relay.sh /root/.npm
USER node
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/node_modules/@wsrelay/relay/dist/bin/wsrelay-relay.js", "healthcheck"]
# Exec form: the relay is PID 1's only process and gets SIGTERM itself (it drains, then exits 0).
# --initial-old-space-size: see "Node flags" in the README.
ENTRYPOINT ["node", "--initial-old-space-size=128", "/app/node_modules/@wsrelay/relay/dist/bin/wsrelay-relay.js"]
