# syntax=docker/dockerfile:1
#
# Pentecost in a container: one binary on distroless, running as the
# unprivileged "nonroot" user, with its state in the /data volume. It is built
# with Opus (libopus through cgo, linked statically), so the server transcodes
# between pcm16 and Opus listeners; the runtime image needs only glibc.
#
#   docker build -t pentecost .
#   docker run -d --name pentecost -p 8080:8080 -v pentecost-data:/data pentecost
#   docker logs pentecost          # the speaker link (built-in auth mode)
#   docker exec pentecost pentecost token --sub NAME
#
# Every flag of `pentecost serve` is also an environment variable:
#   docker run -e PENTECOST_JWT_SECRET=... -e PENTECOST_ALLOWED_ORIGINS=... pentecost
# See docs/operations.md.

# Debian 12 to match the runtime image's glibc.
FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopus-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# libopus is linked statically: a pkg-config file of our own names libopus.a
# instead of -lopus, so the binary needs no libopus.so at run time (ldd shows
# only libc and libm).
RUN mkdir -p /tmp/pc \
 && sed 's#^Libs: .*#Libs: ${libdir}/libopus.a -lm#' "$(pkg-config --variable=pcfiledir opus)/opus.pc" > /tmp/pc/opus.pc \
 && PKG_CONFIG_PATH=/tmp/pc CGO_ENABLED=1 GOOS=linux go build -tags opus,nolibopusfile -trimpath -ldflags="-s -w" \
      -o /out/pentecost ./cmd/pentecost \
 && mkdir -p /out/data

# distroless "base" (glibc, CA certificates, tzdata, nonroot user) rather than
# "static": the cgo binary links glibc dynamically.
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/pentecost /usr/local/bin/pentecost
# The data dir must belong to the user the server runs as (nonroot, 65532).
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot:nonroot
ENV PENTECOST_ADDR=:8080 \
    PENTECOST_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
# docker stop sends SIGTERM: the server drains for --shutdown-grace (10 s)
# before it exits; run containers with --stop-timeout 30 (or a matching
# terminationGracePeriodSeconds) so it is not killed first.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/pentecost"]
CMD ["serve"]
