# syntax=docker/dockerfile:1
#
# The fleet image (used by docker-compose.yml's `worker`, `fleet-sim` and
# `fleet` services): /fleet-worker (the entrypoint), /fleet (the CLI) and
# /fleet-sim (the simulated data plane, inventory and Datadog monitors).
#
#   docker build -t fleet-worker .
#
# Build stage: the project builds with Go 1.27.3 (go.mod needs 1.26.10 or newer
# for the Temporal server); GOTOOLCHAIN makes the go command fetch it from the
# module proxy whatever the image ships.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION} AS build
ENV GOTOOLCHAIN=go1.27.3
WORKDIR /src

# Module downloads in their own layer: they change less often than the code.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
# Pure Go (the SQLite driver of the embedded dev server is modernc.org/sqlite),
# so a static binary that runs on distroless/static.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/fleet-worker ./worker && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/fleet ./starter && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/fleet-sim ./internal/sim/cmd/fleetsim && \
    mkdir -p /out/plans

# Runtime: no shell, no package manager, runs as an unprivileged user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fleet-worker /out/fleet /out/fleet-sim /
# The plan store's directory (FLEET_PLAN_STORE=dir:/var/lib/fleet/plans in
# docker-compose.yml), owned by nonroot so a new named volume mounted there is.
COPY --from=build --chown=65532:65532 /out/plans /var/lib/fleet/plans
USER nonroot:nonroot
ENTRYPOINT ["/fleet-worker"]
