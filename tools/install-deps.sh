#!/usr/bin/env bash
# Installs the Debian packages the build and the test suites need, and only
# those that are missing: a machine that has them all is left untouched and
# nothing is printed. Needs root (or sudo) when something is missing.
set -euo pipefail

# gcc, g++, libc6-dev: C/C++ test programs, linked statically.
# linux-libc-dev: kernel headers the ABI tests compare against.
# libgtest-dev, libgmock-dev: the syscall conformance suite.
# busybox-static: a static userland for in-sandbox tests.
# iproute2: network namespaces and veth pairs for the network tests.
# runc: the reference runtime the benchmarks compare with.
# docker.io: a private dockerd for the Docker end-to-end test (--runtime=runsc).
packages=(gcc g++ make libc6-dev linux-libc-dev libgtest-dev libgmock-dev busybox-static iproute2 runc docker.io)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
	SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
