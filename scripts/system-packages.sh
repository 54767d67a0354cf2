#!/usr/bin/env bash
# The system packages ipyckpt builds and runs with (Debian/Ubuntu): a C
# compiler, zlib's headers for the core, setarch.  Installs what is missing.
set -euo pipefail
missing=()
for pkg in gcc libc6-dev zlib1g-dev util-linux; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq "${missing[@]}"
fi
