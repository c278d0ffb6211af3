# Build stage: compile the release binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update -qq && apt-get install -y -qq cmake pkg-config libssl-dev && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin enrollgate

# Runtime stage: the binary alone, run as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq ca-certificates libssl3 && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/enrollgate --create-home enrollgate
COPY --from=build /src/target/release/enrollgate /usr/local/bin/enrollgate
COPY config/ /etc/enrollgate/
USER enrollgate
WORKDIR /var/lib/enrollgate
# In a container the listeners must bind all interfaces; see config/container.toml.
EXPOSE 8443 8080 9090 5684/udp
ENTRYPOINT ["/usr/local/bin/enrollgate"]
CMD ["serve", "--config", "/etc/enrollgate/container.toml", "--data-dir", "/var/lib/enrollgate/data"]
