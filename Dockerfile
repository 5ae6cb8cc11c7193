# syntax=docker/dockerfile:1
#
# The fleet worker image (used by docker-compose.yml's `worker` service).
#
#   docker build -t fleet-worker .
#
# Build stage: go.mod needs Go >= 1.26.8 and the golang images set
# GOTOOLCHAIN=local, so GO_VERSION must name a 1.26 release at least that new.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION} AS build
WORKDIR /src

# Module downloads in their own layer: they change less often than the code.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
# Pure Go (the SQLite driver of the embedded dev server is modernc.org/sqlite),
# so a static binary that runs on distroless/static.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/fleet-worker ./worker

# Runtime: no shell, no package manager, runs as an unprivileged user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fleet-worker /fleet-worker
USER nonroot:nonroot
ENTRYPOINT ["/fleet-worker"]
