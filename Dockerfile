# syntax=docker/dockerfile:1
# Builds the operator image: a static binary on a distroless base, run as a
# non-root user. Building it needs a Docker engine: make docker-build.

FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /workspace

# Download modules in their own layer, so that a code change does not
# download them again.
COPY go.mod go.sum ./
RUN go mod download

COPY *.go ./
COPY api/ api/
COPY internal/ internal/
COPY pkg/ pkg/

# CGO_ENABLED=0 gives a static binary that runs on the distroless base.
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o manager .

FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
# REVISION is the Git commit the image is built from; "make docker-build"
# passes it.
ARG REVISION=unknown
LABEL org.opencontainers.image.title="keboola-operator" \
      org.opencontainers.image.description="Kubernetes operator that manages Keboola webhooks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/keboola/keboola-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /
COPY --from=builder /workspace/manager /manager
# 65532 is the "nonroot" user of the distroless image.
USER 65532:65532
ENTRYPOINT ["/manager"]
