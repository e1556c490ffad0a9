#!/usr/bin/env bash
# Installs the Debian packages replroute builds and tests with.  Needs root;
# a no-op for packages already present.  Set RR_APT_UPDATE=1 to refresh the
# package lists first (a fresh machine needs it).
set -euo pipefail
packages=(
	build-essential cmake libgtest-dev libboost-dev
	postgresql-15 postgresql-server-dev-15 postgresql-contrib libipc-run-perl
	python3-django python3-psycopg2 prometheus-postgres-exporter prometheus curl
	debhelper postgresql-server-dev-all dpkg-dev sqlsmith pgbouncer haproxy
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ "${RR_APT_UPDATE:-0}" = 1 ] || ! apt-cache show "${missing[0]}" >/dev/null 2>&1; then
	apt-get update -qq
fi
echo "install-deps: installing ${missing[*]}"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
