#!/usr/bin/env bash
# Set up this machine (Debian/Ubuntu) and run the main job or the tests.
#
#   ./run.sh build [invoke build-runtime flags]   build + verify the default target's image
#   ./run.sh test  [pytest args]                  lint and run the whole test suite; as root
#                                                 and without args also the integration
#                                                 suite again as a rootless user
#   ./run.sh test-rootless [pytest args]          only that rootless run (as root)
#
# Installs what is missing: buildah and friends from apt (as root, or through sudo), and a
# virtual environment in .venv with the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")"

# git, librust-*: the tests' loopback git server and crate registry (tests/fixtures).
# skopeo and gnupg serve `invoke publish` (tag lookups, signing); docker-registry and
# apache2-utils (htpasswd) the tests' own registries on 127.0.0.1 (the package's own service
# is stopped, see stop_packaged_registry).
# qemu-user-static and binfmt-support run another architecture's programs (output.platforms,
# --platform; the tests build linux/arm64), see setup_emulation.
APT_PACKAGES=(buildah fuse-overlayfs uidmap slirp4netns debootstrap python3 python3-venv
              gcc libc6-dev util-linux git librust-memchr-dev librust-once-cell-dev
              skopeo gnupg docker-registry apache2-utils qemu-user-static binfmt-support)
BINFMT=/proc/sys/fs/binfmt_misc

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_system_packages() {
    local missing=()
    for package in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "==> installing ${missing[*]}" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
    stop_packaged_registry
}

# Debian's docker-registry package starts a registry listening on every address (:5000) where
# systemd runs; nothing here uses it (the tests start their own on 127.0.0.1), so stop it.
stop_packaged_registry() {
    if command -v systemctl >/dev/null 2>&1 \
        && systemctl is-active --quiet docker-registry 2>/dev/null; then
        echo "==> stopping the packaged docker-registry service (listens on :5000)" >&2
        as_root systemctl disable --now docker-registry >&2
    fi
}

# A build for another architecture runs its apt, cargo and LuaJIT through qemu, which the
# kernel starts via binfmt_misc. That is not mounted at boot on these machines, and
# binfmt-support registers qemu's handlers only into a mounted one: mount it, then enable the
# handlers. Without root (or where the mount is refused) say so; such a build then stops with
# one line naming what is missing.
setup_emulation() {
    if [ -e "$BINFMT/qemu-aarch64" ]; then
        return
    fi
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        echo "==> no emulation of other architectures (binfmt_misc needs root); skipped" >&2
        return
    fi
    echo "==> setting up emulation of other architectures (binfmt_misc, qemu-user-static)" >&2
    if [ ! -e "$BINFMT/status" ] \
        && ! as_root mount -t binfmt_misc binfmt_misc "$BINFMT" >&2; then
        echo "==> could not mount binfmt_misc; builds for other platforms will fail" >&2
        return
    fi
    as_root update-binfmts --enable >&2 || true
}

# Whether this build's target (--target NAME, else the default) or a --platform flag asks for
# platforms: only then does `./run.sh build` set up emulation.
build_needs_emulation() {
    local file=config/offline.toml previous=""
    for arg in "$@"; do
        case "$arg" in
            --platform|--platform=*) return 0 ;;
            --target=*) file="config/${arg#--target=}.toml" ;;
            --config=*) file=${arg#--config=} ;;
        esac
        case "$previous" in
            --target) file="config/$arg.toml" ;;
            --config) file=$arg ;;
        esac
        previous=$arg
    done
    grep -qE '^[[:space:]]*platforms[[:space:]]*=' "$file" 2>/dev/null
}

install_python_packages() {
    local stamp=.venv/requirements.txt
    if [ -x .venv/bin/python ] && cmp -s requirements.txt "$stamp"; then
        return
    fi
    echo "==> creating .venv with the pinned requirements" >&2
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
    cp requirements.txt "$stamp"
}

command=${1:-}
shift || true
case "$command" in
    build)
        install_system_packages
        if build_needs_emulation "$@"; then setup_emulation; fi
        install_python_packages
        exec .venv/bin/invoke build-runtime "$@"
        ;;
    test)
        install_system_packages
        setup_emulation
        install_python_packages
        .venv/bin/ruff check .
        .venv/bin/ruff format --check .
        if [ "$#" -gt 0 ] || [ "$(id -u)" -ne 0 ]; then
            exec .venv/bin/pytest "$@"
        fi
        .venv/bin/pytest
        # The integration suite again as user qjt-rootless, inside `buildah unshare`.
        exec .venv/bin/python -m tests.rootless_suite
        ;;
    test-rootless)
        install_system_packages
        setup_emulation
        install_python_packages
        exec .venv/bin/python -m tests.rootless_suite "$@"
        ;;
    *)
        sed -n '2,11p' "$0" >&2
        exit 2
        ;;
esac
