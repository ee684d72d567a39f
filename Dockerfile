# plancd as a container: a build stage, then a small runtime with git and bubblewrap, running
# as a non-root user. The base images are arguments so that a mirror or a local image can stand
# in for the public ones.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The controller is where traces matter most: the image carries the OTLP exporter.
RUN cargo build --release --locked -j2 --features otlp --bin plancd

FROM ${BASE_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends git bubblewrap ca-certificates python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/plancd --create-home plancd
COPY --from=build /src/target/release/plancd /usr/local/bin/plancd
USER 10001:10001
WORKDIR /var/lib/plancd
ENV RUST_LOG=info
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["plancd"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--config", "/etc/plancd/serve.yaml"]
