#!/usr/bin/env bash
# Builds the sandbox image `plancd-sandbox:python` without any container registry:
# debootstraps a minimal Debian bookworm root with python3, pip-installs the test and check
# tools and the model clients into it, npm-installs the coding CLIs (Codex CLI, Claude Code),
# pip-installs the coding agents (aider, mini-swe-agent), each into a venv of its own, and
# imports the folder with `docker import`.
#
# The root folder is cached (PLANCD_SANDBOX_ROOT, default /var/cache/plancd/sandbox-root) and
# can serve the process backend as SessionSpec.root. Idempotent: does nothing when the image
# exists and the root holds every tool, unless --force (rebuilds the image from the cached root)
# or --fresh (rebuilds the root as well). A cached root that lacks tools added to this recipe
# since (the model clients, say) gets them added, and the image is imported again.
# --root-only builds the folder and skips Docker.
set -euo pipefail

IMAGE="${PLANCD_SANDBOX_IMAGE:-plancd-sandbox:python}"
ROOT="${PLANCD_SANDBOX_ROOT:-/var/cache/plancd/sandbox-root}"
SUITE="${PLANCD_SANDBOX_SUITE:-bookworm}"
MIRROR="${PLANCD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PY_TOOLS=(pytest pytest-json-report coverage flake8 mypy bandit)
# Coding agents from PyPI, pinned, each in a venv of its own under /opt/<name> (their pinned
# dependencies never touch the system packages the tests use), entry points linked into
# /usr/local/bin: "name requirement entry-points...".
PY_AGENTS=("aider aider-chat==0.86.2 aider" "mini-swe-agent mini-swe-agent==2.4.6 mini")
# The installer of the agents' venvs (only for the install; not left in the root).
UV="uv==0.13.9"
# The official model API clients, pinned: command agents reach models through plancd's gateway
# with them. PY_CLIENT_DIRS are their packages' folders, PY_CLIENT_MODULES their imports.
PY_CLIENTS=(openai==3.57.0 anthropic==2.16.0 google-genai==3.6.1)
PY_CLIENT_DIRS=(openai anthropic google/genai)
PY_CLIENT_MODULES="openai, anthropic, google.genai"
# The coding-agent CLIs, pinned, installed by the host's npm into the root's /opt/npm-clients:
# Codex CLI runs as its static musl binary and Claude Code as its native (glibc) binary, so the
# root needs no node runtime; /usr/local/bin/codex and /usr/local/bin/claude point at them.
NPM_CLIENTS=(@openai/codex@0.171.0 @anthropic-ai/claude-code@2.1.197)
NPM_DIR=opt/npm-clients

force=0 fresh=0 root_only=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --fresh) fresh=1 force=1 ;;
    --root-only) root_only=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { echo "images: $*" >&2; }

# Whether the root holds each agent of PY_AGENTS at its pinned version (a marker written last,
# so an interrupted install counts as missing).
has_agents() {
  local agent name req
  for agent in "${PY_AGENTS[@]}"; do
    read -r name req _ <<<"$agent"
    [ "$(cat "$ROOT/opt/$name/.plancd-installed" 2>/dev/null)" = "$req" ] || return 1
  done
}

# Whether the image holds the agents (one imported before they were added lacks them).
image_has_agents() {
  local agent name req probe=true
  for agent in "${PY_AGENTS[@]}"; do
    read -r name req _ <<<"$agent"
    probe+=" && grep -qxF '$req' /opt/$name/.plancd-installed"
  done
  docker run --rm --network none "$IMAGE" sh -c "$probe" >/dev/null 2>&1
}

# Whether the root holds the clients (read from its files: no root needed to ask).
has_clients() {
  local c
  for c in "${PY_CLIENT_DIRS[@]}"; do
    compgen -G "$ROOT/usr/local/lib/python3*/dist-packages/$c/__init__.py" >/dev/null || return 1
  done
}

# Whether the root holds the npm CLIs (relative links, so this reads the root's own files).
has_npm_clients() {
  [ -x "$ROOT/usr/local/bin/codex" ] && [ -x "$ROOT/usr/local/bin/claude" ]
}

# Whether the root is of the current recipe: python3 with venv's ensurepip (a root built
# before python3-venv was in the recipe cannot make `python3 -m venv /env`).
root_current() {
  [ -x "$ROOT/usr/bin/python3" ] && compgen -G "$ROOT/usr/lib/python3*/ensurepip/__init__.py" >/dev/null
}

# Whether the image holds the clients and venv (an image imported before they were added
# lacks them).
image_has_clients() {
  docker image inspect "$IMAGE" >/dev/null 2>&1 &&
    docker run --rm --network none "$IMAGE" python3 -c "import ensurepip, $PY_CLIENT_MODULES" >/dev/null 2>&1 &&
    docker run --rm --network none "$IMAGE" sh -c 'codex --version && HOME=/tmp claude --version' >/dev/null 2>&1
}

if [ "$root_only" -eq 0 ] && [ "$force" -eq 0 ] && root_current && has_clients && has_npm_clients && image_has_clients && has_agents && image_has_agents; then
  # A root built by an earlier version lacks the mount points added since.
  [ -w "$ROOT" ] && mkdir -p "$ROOT/run/plancd-net" "$ROOT/env"
  log "$IMAGE and $ROOT exist (use --force to rebuild)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "build.sh: needs root (debootstrap and chroot)" >&2
  exit 1
fi

# Runs pip install in the root `$1` (with /proc mounted) with the host's CA, index and proxies:
# into the system's python3, or with uv into the venv whose interpreter PIP_PYTHON names.
pip_in() {
  local dir="$1"; shift
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/tmp/host-ca.crt"
  mount -t proc proc "$dir/proc"
  trap 'umount "'"$dir"'/proc" 2>/dev/null || true' EXIT
  log "pip install $*"
  local pass=()
  for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL HTTP_PROXY HTTPS_PROXY http_proxy https_proxy NO_PROXY no_proxy; do
    [ -n "${!var:-}" ] && pass+=("$var=${!var}")
  done
  if [ -n "${PIP_PYTHON:-}" ]; then
    # Into a venv, with uv (a pinned agent's hundred-odd dependencies in seconds, not
    # minutes), fetched into /tmp for the install and gone after it.
    [ -n "${PIP_INDEX_URL:-}" ] && pass+=("UV_INDEX_URL=$PIP_INDEX_URL")
    [ -n "${PIP_EXTRA_INDEX_URL:-}" ] && pass+=("UV_EXTRA_INDEX_URL=$PIP_EXTRA_INDEX_URL")
    chroot "$dir" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root PIP_NO_CACHE_DIR=1 \
      PIP_CERT=/tmp/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "${pass[@]}" \
      python3 -m pip install -q --no-warn-script-location --break-system-packages --target /tmp/plancd-uv "$UV"
    chroot "$dir" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root UV_NO_CACHE=1 SSL_CERT_FILE=/tmp/host-ca.crt \
      "${pass[@]}" /tmp/plancd-uv/bin/uv pip install -q --compile-bytecode --python "$PIP_PYTHON" "$@"
    rm -rf "$dir/tmp/plancd-uv"
  else
    chroot "$dir" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root PIP_NO_CACHE_DIR=1 \
      PIP_CERT=/tmp/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "${pass[@]}" \
      python3 -m pip install -q --no-warn-script-location --break-system-packages "$@"
  fi
  umount "$dir/proc"
  trap - EXIT
  : >"$dir/etc/resolv.conf"
  rm -rf "$dir/root/.cache" "$dir/tmp/host-ca.crt"
}

# Installs the npm CLIs into the root `$1` with the host's npm (Debian's, when the host has
# none), and links their native binaries into /usr/local/bin.
npm_in() {
  local dir="$1" bin codex claude home
  command -v npm >/dev/null || {
    log "installing npm"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
  }
  log "npm install ${NPM_CLIENTS[*]}"
  mkdir -p "$dir/$NPM_DIR"
  npm install --prefix "$dir/$NPM_DIR" --no-audit --no-fund --no-update-notifier --loglevel=error "${NPM_CLIENTS[@]}" >&2
  bin="$dir/usr/local/bin"
  codex=$(cd "$dir/$NPM_DIR" && compgen -G "node_modules/@openai/codex-linux-*/vendor/*-linux-musl/bin/codex" | head -1)
  claude=$(cd "$dir/$NPM_DIR" && compgen -G "node_modules/@anthropic-ai/claude-code-linux-*/claude" | grep -v musl | head -1)
  [ -n "$codex" ] && [ -n "$claude" ] || { echo "build.sh: npm installed no native codex or claude binary" >&2; exit 1; }
  mkdir -p "$bin"
  ln -sfn "../../../$NPM_DIR/$codex" "$bin/codex"
  ln -sfn "../../../$NPM_DIR/$claude" "$bin/claude"
  chmod -R a+rX "$dir/$NPM_DIR"
  rm -rf "$dir/root/.npm"
  home=$(mktemp -d)
  "$bin/codex" --version >&2 && HOME="$home" "$bin/claude" --version >&2
  rm -rf "$home"
}

# Installs each agent of PY_AGENTS that the root `$1` lacks into a fresh venv /opt/<name>, and
# links its entry points into /usr/local/bin.
agents_in() {
  local dir="$1" agent name req bins bin
  for agent in "${PY_AGENTS[@]}"; do
    read -r name req bins <<<"$agent"
    [ "$(cat "$dir/opt/$name/.plancd-installed" 2>/dev/null)" = "$req" ] && continue
    rm -rf "${dir:?}/opt/$name"
    chroot "$dir" python3 -m venv "/opt/$name"
    PIP_PYTHON="/opt/$name/bin/python" pip_in "$dir" "$req"
    for bin in $bins; do
      [ -x "$dir/opt/$name/bin/$bin" ] || { echo "build.sh: $req has no entry point $bin" >&2; exit 1; }
      ln -sfn "/opt/$name/bin/$bin" "$dir/usr/local/bin/$bin"
    done
    [ "$name" = aider ] && aider_metadata "$dir"
    echo "$req" >"$dir/opt/$name/.plancd-installed"
  done
}

# Writes /opt/aider/model-metadata.json in the root `$1` from LiteLLM's bundled model map, keyed
# as aider names the models (`openai/gpt-4o-mini`): with `--model-metadata-file` it, aider finds
# a model's context window there instead of fetching the map from the internet at start.
aider_metadata() {
  chroot "$1" /opt/aider/bin/python - <<'PY'
import glob, json
src = glob.glob("/opt/aider/lib/python3*/site-packages/litellm/model_prices_and_context_window_backup.json")[0]
keep = ("max_tokens", "max_input_tokens", "max_output_tokens", "input_cost_per_token", "output_cost_per_token", "litellm_provider", "mode")
out = {}
for name, info in json.load(open(src)).items():
    provider = isinstance(info, dict) and info.get("litellm_provider")
    if provider in ("openai", "anthropic", "gemini") and info.get("mode") == "chat":
        out[name if name.startswith(provider + "/") else f"{provider}/{name}"] = {k: info[k] for k in keep if k in info}
with open("/opt/aider/model-metadata.json", "w") as f:
    json.dump(out, f, indent=0)
PY
}

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
  pip_in "$tmp" "${PY_TOOLS[@]}" "${PY_CLIENTS[@]}"
  chroot "$tmp" python3 -c "import pytest, coverage, flake8, mypy, bandit, pytest_jsonreport, $PY_CLIENT_MODULES"
  npm_in "$tmp"
  # What a sandbox needs and nothing it should not keep.
  # /env: where a prepared environment is mounted (plancd.yaml `environment:`).
  mkdir -p "$tmp/workspace" "$tmp/run/plancd" "$tmp/run/plancd-net" "$tmp/env"
  chown 65534:65534 "$tmp/workspace"
  : >"$tmp/etc/resolv.conf"
  rm -rf "$tmp/var/cache/apt/archives/"*.deb "$tmp/var/lib/apt/lists/"* "$tmp/root/.cache" "$tmp/tmp/"* "$tmp/.debootstrap-done"
  rm -rf "$ROOT"
  mv "$tmp" "$ROOT"
}

if [ "$fresh" -eq 1 ] || ! root_current; then
  [ -x "$ROOT/usr/bin/python3" ] && log "$ROOT is of an older recipe (no python3-venv): building it again"
  build_root
elif ! has_clients; then
  log "adding ${PY_CLIENTS[*]} to the cached root $ROOT"
  pip_in "$ROOT" "${PY_CLIENTS[@]}"
  chroot "$ROOT" python3 -c "import $PY_CLIENT_MODULES"
else
  log "using the cached root $ROOT"
fi
if ! has_npm_clients; then
  log "adding ${NPM_CLIENTS[*]} to the root $ROOT"
  npm_in "$ROOT"
fi
has_agents || agents_in "$ROOT"
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
