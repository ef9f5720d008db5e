# syntax=docker/dockerfile:1
# signgate: the admission webhook image.
#
#   docker build -t ghcr.io/signgate/signgate:0.1.0 .
#
# Build stage: `cargo build --release --locked`, the same command scripts/test-chart runs
# before it starts the binary. The toolchain signgate is developed with has no musl target
# installed, so this is a glibc build (bookworm, glibc 2.36) and the final image is
# distroless/cc on the same Debian release: glibc, libgcc, CA certificates, nothing else.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/signgate /out/signgate

# Final image: no shell, no package manager; numeric non-root user (nonroot = 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/signgate/signgate
LABEL org.opencontainers.image.title="signgate" \
      org.opencontainers.image.description="Kubernetes admission webhook that admits Pods only when every image is signed (Docker Content Trust / Notary v1)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /out/signgate /usr/local/bin/signgate
USER 65532:65532
# 8443: webhook (HTTPS); 9090: metrics and /healthz (HTTP).
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/signgate"]
CMD ["serve", "--config", "/etc/signgate/config/signgate.yaml", "--tls-cert", "/etc/signgate/tls/tls.crt", "--tls-key", "/etc/signgate/tls/tls.key"]
