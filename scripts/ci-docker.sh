#!/usr/bin/env bash
# Installs what the container tests need, idempotently: the Docker engine (Debian `docker.io`:
# dockerd, containerd, runc and the docker client), podman (its Docker-compatible service is the
# second engine the module is tested against) and a static busybox (`busybox-static`), from
# which the tests build their image with `docker import` (no registry is reachable in CI).
# It starts no engine: the tests start their own dockerd / podman service, each with its own
# data root and socket (see src/modules/containers/tests/engine.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/install.sh
. scripts/lib/install.sh

ensure_apt docker.io podman runc busybox-static
for tool in dockerd containerd runc podman docker; do
  command -v "$tool" >/dev/null 2>&1 || { echo "ci-docker: $tool missing after install" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "ci-docker: /bin/busybox missing after install" >&2; exit 1; }
dockerd --version
podman --version
