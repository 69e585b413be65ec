# syntax=docker/dockerfile:1
#
# Pentecost in a container: a static binary on distroless, running as the
# unprivileged "nonroot" user, with its state in the /data volume.
#
#   docker build -t pentecost .
#   docker run -d --name pentecost -p 8080:8080 -v pentecost-data:/data pentecost
#   docker logs pentecost          # the speaker link (built-in auth mode)
#   docker exec pentecost pentecost token --sub NAME
#
# Every flag of `pentecost serve` is also an environment variable:
#   docker run -e PENTECOST_JWT_SECRET=... -e PENTECOST_ALLOWED_ORIGINS=... pentecost
# See docs/operations.md.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/pentecost ./cmd/pentecost \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
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
