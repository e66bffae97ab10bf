# Flotilla: the `flotilla` service binary and the `instantly-sim` simulator (for demos).
# Built by docker-compose.yml; see the comments there for how to start it.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# Migrations are embedded at compile time, so the runtime image needs only the binaries.
RUN cargo build --release --locked -p flotilla_service -p flotilla_instantly_sim --bins \
    && cp target/release/flotilla target/release/instantly-sim /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/flotilla --create-home flotilla
COPY --from=builder /usr/local/bin/flotilla /usr/local/bin/instantly-sim /usr/local/bin/
USER flotilla
WORKDIR /var/lib/flotilla
ENV FLOTILLA_LISTEN=0.0.0.0:8080 \
    FLOTILLA_DATA_DIR=/var/lib/flotilla
EXPOSE 8080
ENTRYPOINT ["flotilla"]
CMD ["serve"]
