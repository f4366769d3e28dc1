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
APT_PACKAGES=(buildah fuse-overlayfs uidmap slirp4netns debootstrap python3 python3-venv
              gcc libc6-dev util-linux git librust-memchr-dev librust-once-cell-dev
              skopeo gnupg docker-registry apache2-utils)

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
        install_python_packages
        exec .venv/bin/invoke build-runtime "$@"
        ;;
    test)
        install_system_packages
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
        install_python_packages
        exec .venv/bin/python -m tests.rootless_suite "$@"
        ;;
    *)
        sed -n '2,11p' "$0" >&2
        exit 2
        ;;
esac
