# syntax=docker/dockerfile:1
#
# Builds the jwed image:
#
#   docker build -t jwed:dev .
#
# The build stage compiles a release binary with the default
# vendored-openssl feature, so OpenSSL 3.6 is linked statically and the
# binary needs only glibc, libm and libgcc_s at run time. The final stage is
# distroless cc on Debian 12: those libraries and CA certificates, with no
# shell and no package manager.

FROM rust:1-bookworm AS build
WORKDIR /src

# The vendored OpenSSL build needs perl and make, which rust:1-bookworm
# already contains.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
# Cargo.toml declares the benches, and cargo rejects a manifest whose
# declared targets are missing, even when it does not build them.
COPY benches ./benches

# The cache mounts keep the crates.io downloads and the compiled
# dependencies between builds. The binary is copied out of the cache mount
# because the mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/jwed /out/jwed

FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=build /out/jwed /usr/local/bin/jwed

# 65532 is the nonroot user and group of distroless images. A numeric id
# lets Kubernetes verify runAsNonRoot without reading /etc/passwd.
USER 65532:65532

# 50051: gRPC over TCP (server.tcp_listen), when the configuration turns it
# on. 9090: the HTTP operations port (server.ops_listen) with /metrics,
# /healthz and /.well-known/jwks.json. The Unix socket needs no port.
EXPOSE 50051 9090

ENTRYPOINT ["/usr/local/bin/jwed"]
# The k8s/ overlays mount their configuration at this path.
CMD ["serve", "--config", "/etc/jwed/config/jwed.toml"]
