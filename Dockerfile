# The chatbot service as a container: `docker compose up` (see docker-compose.yml and
# README.md, "Run with Docker"), or on its own:
#
#   docker build -t chatbot .
#   docker run --rm -p 5000:5000 -e SECRET_KEY=$(openssl rand -hex 32) \
#       -e DATABASE_URL=postgres://user:password@host:5432/chatbot chatbot
#
# Two stages: a Rust toolchain builds the release binary; a slim Debian of the same
# release (so the same glibc) runs it as an unprivileged user. SQLite, libpq and
# OpenSSL (libpq's TLS) are compiled into the binary (bundled / vendored features; the
# rust image has the C compiler, make and perl they need); it links only libc, libm
# and libgcc_s, so the runtime stage adds nothing but CA certificates.
# The migrations and the config/*.toml files are compiled into the binary too; the
# config files are also copied to /app/config, where the binary looks first, so an
# operator can read them or mount replacements.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /build

# 1. Dependencies only, in a layer of their own: it is rebuilt when a manifest, the
#    lock file or .cargo/config.toml changes, not when the code does. The workspace's
#    crates are stubbed with empty sources so that cargo can resolve and compile
#    every dependency. .cargo/config.toml sets the flags the bundled SQLite is built
#    with, so it has to be here already. Then the stubs' own build results go: the
#    real sources may carry older timestamps than the stubs, which cargo would take
#    for "up to date".
COPY Cargo.toml Cargo.lock ./
COPY .cargo/ .cargo/
COPY crates/bot/Cargo.toml crates/bot/
COPY crates/domain/Cargo.toml crates/domain/
COPY crates/hashing/Cargo.toml crates/hashing/
COPY crates/mail/Cargo.toml crates/mail/
COPY crates/http/Cargo.toml crates/http/
COPY crates/openai/Cargo.toml crates/openai/
COPY crates/persistence/Cargo.toml crates/persistence/
COPY crates/server/Cargo.toml crates/server/
# The benchmarks' load generator is a workspace member the image never builds: its
# manifest and an empty main are enough for cargo to read the workspace.
COPY bench/loadgen/Cargo.toml bench/loadgen/
RUN set -eux; \
    for crate in crates/*/; do \
        mkdir -p "${crate}src"; \
        : > "${crate}src/lib.rs"; \
    done; \
    echo 'fn main() {}' > crates/server/src/main.rs; \
    mkdir -p bench/loadgen/src; \
    echo 'fn main() {}' > bench/loadgen/src/main.rs; \
    cargo build --release --locked -p chatbot-server; \
    rm -rf crates/*/src \
        target/release/chatbot target/release/chatbot.d \
        target/release/.fingerprint/chatbot-* \
        target/release/deps/chatbot-* target/release/deps/chatbot_* \
        target/release/deps/libchatbot_*

# 2. The code. config/, migrations/ and web/ are read at compile time (include_str!,
#    diesel's embed_migrations! and the web client's include_bytes!).
COPY config/ config/
COPY migrations/ migrations/
COPY web/ web/
COPY crates/ crates/
RUN set -eux; \
    cargo build --release --locked -p chatbot-server; \
    strip target/release/chatbot; \
    ./target/release/chatbot --help | grep migrations >/dev/null; \
    if ldd target/release/chatbot | grep -E 'libssl|libcrypto|libpq|libsqlite'; then \
        echo 'the binary links the libraries above; the runtime stage does not have them' >&2; \
        exit 1; \
    fi

# ---------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: for sslrootcert=system, to verify a managed PostgreSQL's
# certificate (the TLS itself is the OpenSSL built into the binary: no libssl here).
# data/: where the default SQLite database would go, for `docker run` without
# DATABASE_URL (compose uses PostgreSQL).
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 chatbot; \
    useradd --system --uid 10001 --gid chatbot --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin chatbot; \
    mkdir -p /app/data; \
    chown chatbot:chatbot /app/data

WORKDIR /app
COPY --from=build /build/target/release/chatbot /usr/local/bin/chatbot
COPY --from=build /build/config/ /app/config/
COPY docker/healthcheck.sh /usr/local/bin/chatbot-healthcheck

# Production profile: SECRET_KEY is required (32+ bytes) and cookies are Secure, so the
# service belongs behind TLS. HOST=0.0.0.0: reachable through the published port.
ENV APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=5000

# The OpenSSL built into the binary looks for CA certificates under its own default
# directory (/usr/local/ssl), not Debian's: point it at the ones installed above, so
# that sslrootcert=system verifies a server's certificate.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_DIR=/etc/ssl/certs

USER chatbot:chatbot
EXPOSE 5000

# The probe is a bash script (bash is part of every Debian image) that speaks HTTP
# over bash's /dev/tcp: no curl or wget in the image, nothing more to patch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/chatbot-healthcheck", "/api/health"]

# The server stops on SIGTERM (docker stop): it stops accepting, finishes the requests
# in flight (up to server.shutdown_timeout_seconds) and exits 0. It handles the signal
# itself, so it can run as PID 1.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/chatbot"]
# Other commands: migrate, rollback [--all], migrations (docker compose run app migrate).
CMD ["serve"]
