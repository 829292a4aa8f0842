# syntax=docker/dockerfile:1
#
# The whole app in one image: the `detailing` host and the nine Spin components it serves, laid
# out the way spin.toml names them. The same image runs `detailing relay` and `detailing migrate`
# (docker-compose.yml, deploy/spinkube/). Needs BuildKit (the default builder of current Docker).
#
#   docker build -t detailing-host .

# rust-toolchain.toml pins the release; keep these two in step with it.
ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# rustup does not add rust-toolchain.toml's targets to a toolchain that is already installed.
COPY rust-toolchain.toml ./
RUN rustup target add wasm32-wasip1
# docs-service's build fetches Swagger UI's files (swagger-ui-dist) with npm.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# The caches keep crates and incremental builds between image builds; everything the runtime
# stage needs is copied out to /out, since a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p detailing \
    && target/release/detailing build \
    && mkdir -p /out/wasm \
    && cp target/release/detailing /out/detailing \
    && cp target/wasm32-wasip1/wasm/*.wasm /out/wasm/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# The system's CA roots: `sslmode=verify-full` to a managed PostgreSQL, `amqps://` and an
# `https://` bonus URL check certificates against them.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# An unprivileged user; the compile cache is the only place it writes.
RUN groupadd --system --gid 10001 detailing \
    && useradd --system --uid 10001 --gid detailing --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin detailing \
    && mkdir -p /app /var/cache/detailing \
    && chown detailing:detailing /var/cache/detailing
WORKDIR /app
COPY --from=builder /out/detailing /usr/local/bin/detailing
COPY spin.toml /app/spin.toml
COPY migrations/ /app/migrations/
COPY --from=builder /out/wasm/ /app/target/wasm32-wasip1/wasm/
# Compiled components are cached here, so a restart does not recompile (mount a volume to keep
# them across containers).
ENV DETAILING_CACHE_DIR=/var/cache/detailing \
    RUST_LOG=info
USER 10001:10001
EXPOSE 3000
ENTRYPOINT ["detailing"]
EXPOSE 9464
# Prometheus metrics on 9464 (/metrics); the port is not published unless mapped.
CMD ["up", "--listen", "0.0.0.0:3000", "--metrics-listen", "0.0.0.0:9464"]
