#!/usr/bin/env bash
# Builds the sandbox image `plancd-sandbox:python` without any container registry:
# debootstraps a minimal Debian bookworm root with python3, pip-installs the test and check
# tools into it, and imports the folder with `docker import`.
#
# The root folder is cached (PLANCD_SANDBOX_ROOT, default /var/cache/plancd/sandbox-root) and
# can serve the process backend as SessionSpec.root. Idempotent: does nothing when the image
# exists, unless --force (rebuilds the image from the cached root) or --fresh (rebuilds the
# root as well). --root-only builds the folder and skips Docker.
set -euo pipefail

IMAGE="${PLANCD_SANDBOX_IMAGE:-plancd-sandbox:python}"
ROOT="${PLANCD_SANDBOX_ROOT:-/var/cache/plancd/sandbox-root}"
SUITE="${PLANCD_SANDBOX_SUITE:-bookworm}"
MIRROR="${PLANCD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PY_TOOLS=(pytest pytest-json-report coverage flake8 mypy bandit)

force=0 fresh=0 root_only=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --fresh) fresh=1 force=1 ;;
    --root-only) root_only=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { echo "images: $*" >&2; }

if [ "$root_only" -eq 0 ] && [ "$force" -eq 0 ] && [ -x "$ROOT/usr/bin/python3" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  # A root built by an earlier version lacks the mount points added since.
  [ -w "$ROOT" ] && mkdir -p "$ROOT/run/plancd-net" "$ROOT/env"
  log "$IMAGE and $ROOT exist (use --force to rebuild)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "build.sh: needs root (debootstrap and chroot)" >&2
  exit 1
fi

build_root() {
  local tmp="$ROOT.partial"
  mkdir -p "$(dirname "$ROOT")"
  if [ ! -e "$tmp/.debootstrap-done" ]; then
    rm -rf "$tmp"
    command -v debootstrap >/dev/null || {
      log "installing debootstrap"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    }
    log "debootstrap $SUITE into $tmp"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
      "$SUITE" "$tmp" "$MIRROR" >/tmp/plancd-debootstrap.log 2>&1 || {
      tail -20 /tmp/plancd-debootstrap.log >&2
      exit 1
    }
    touch "$tmp/.debootstrap-done"
  fi
  # pip inside the root trusts what the host trusts (a proxy's CA, for one), only while building.
  cp /etc/resolv.conf "$tmp/etc/resolv.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$tmp/tmp/host-ca.crt"
  mount -t proc proc "$tmp/proc"
  trap 'umount "'"$tmp"'/proc" 2>/dev/null || true' EXIT
  log "pip install ${PY_TOOLS[*]}"
  local pass=()
  for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL HTTP_PROXY HTTPS_PROXY http_proxy https_proxy NO_PROXY no_proxy; do
    [ -n "${!var:-}" ] && pass+=("$var=${!var}")
  done
  chroot "$tmp" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/tmp/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "${pass[@]}" \
    python3 -m pip install -q --no-warn-script-location --break-system-packages "${PY_TOOLS[@]}"
  umount "$tmp/proc"
  trap - EXIT
  chroot "$tmp" python3 -c "import pytest, coverage, flake8, mypy, bandit, pytest_jsonreport"
  # What a sandbox needs and nothing it should not keep.
  # /env: where a prepared environment is mounted (plancd.yaml `environment:`).
  mkdir -p "$tmp/workspace" "$tmp/run/plancd" "$tmp/run/plancd-net" "$tmp/env"
  chown 65534:65534 "$tmp/workspace"
  : >"$tmp/etc/resolv.conf"
  rm -rf "$tmp/var/cache/apt/archives/"*.deb "$tmp/var/lib/apt/lists/"* "$tmp/root/.cache" "$tmp/tmp/"* "$tmp/.debootstrap-done"
  rm -rf "$ROOT"
  mv "$tmp" "$ROOT"
}

if [ "$fresh" -eq 1 ] || [ ! -x "$ROOT/usr/bin/python3" ]; then
  build_root
else
  log "using the cached root $ROOT"
fi
[ "$root_only" -eq 1 ] && exit 0

log "docker import $IMAGE"
tar --numeric-owner -C "$ROOT" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'WORKDIR /workspace' \
  --change 'USER 65534:65534' \
  --change 'CMD ["python3"]' \
  - "$IMAGE" >/dev/null
log "built $IMAGE"
