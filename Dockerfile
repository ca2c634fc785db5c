# appendcast gateway image (also runs `appendcast serve-oss`). Used by docker-compose.yml.
#   docker build -t appendcast .
#   docker run --rm appendcast --help
#
# Three stages: `build` compiles the TypeScript, `deps` installs the production dependencies
# (crc64-ecma182 is a native addon: node-gyp needs python3, make and g++, which stay out of the
# runtime image), `runtime` is Node 20 + Debian's ffmpeg + the two.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# --ignore-scripts: the package's `prepare` would build before src/ is here, and nothing in the
# build needs an install script (ffmpeg-static would download a binary for nothing).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, no optional ones (ffmpeg-static: the image uses Debian's ffmpeg);
# scripts off (`prepare` needs the dev tools), then the one native addon is built explicitly.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && npm rebuild crc64-ecma182 \
 && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    FFMPEG_PATH=/usr/bin/ffmpeg \
    FFPROBE_PATH=/usr/bin/ffprobe
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# What the package ships besides dist (package.json "files"): the configs, the web page.
COPY config ./config
COPY web ./web
# The spool (gateway) and the objects (serve-oss) live in volumes mounted here; created owned by
# the unprivileged user so that fresh named volumes inherit it.
RUN mkdir -p /var/lib/appendcast /var/lib/serve-oss \
 && chown node:node /var/lib/appendcast /var/lib/serve-oss
USER node
EXPOSE 1935 8080 9000
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["run", "--config", "/app/config/compose/appendcast.yaml"]
