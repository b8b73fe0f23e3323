# Build stage: compile the release binary (migrations are embedded in it).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
# The web clients are compiled into the binary.
COPY clients clients
COPY tests tests
COPY load load
RUN cargo build --release --locked --bin boxoffice

# Runtime stage: just the binary, run as an unprivileged user. DATABASE_URL is
# required here: the self-started local cluster is for development machines.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home boxoffice
COPY --from=build /src/target/release/boxoffice /usr/local/bin/boxoffice
USER boxoffice
ENV HOST=0.0.0.0 PORT=3000
EXPOSE 3000
ENTRYPOINT ["boxoffice"]
