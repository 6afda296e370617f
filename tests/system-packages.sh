#!/usr/bin/env bash
# Install the Debian packages the tests need (MariaDB server, Chromium and its driver, iproute2 for the
# loopback-only namespace) when any is missing. Runs apt as root, or through sudo.
set -euo pipefail
packages=(mariadb-server chromium chromium-driver iproute2)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "tests need: ${missing[*]} (Debian package names); install them with your package manager" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
