#!/usr/bin/env bash
# Installs what tlearn needs on a fresh machine; idempotent (a second run does
# nothing but check). Called by `make setup`, and so by build, test and demo.
#
#  * ONNX Runtime: the linux-x64 libonnxruntime.so.1 that Microsoft ships inside
#    the npm package onnxruntime-node. `npm pack` only downloads the tarball (no
#    install scripts run); the tarball is checked against the sha256 below and
#    the library lands in .ort/lib (ignored by git).
#  * Debian packages, only where missing: libopenblas-dev (the optional BLAS
#    backend, `make build-blas`).
#  * versitygw (an S3-compatible server, Apache-2.0) at a pinned version in
#    .tools/versitygw, built from the Go module proxy: the tests of datasets
#    in object storage start it on 127.0.0.1. Slow to build the first time
#    (about 2.5 min on 2 cores, 83 MB); skipped when the binary is already that
#    version (`go version -m` reads it from the binary).
#  * Slurm and MUNGE from Debian (slurmctld, slurmd, slurm-client, munge), only
#    where missing: the tests start a one-node cluster on localhost
#    (internal/testutil/slurmtest). Best effort: when apt cannot install them,
#    setup goes on and those tests skip, naming what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_NPM_VERSION=1.27.0
ORT_NPM_SHA256=c3779c01c59832f8c03e2c392ac3af10bf08579f1822e8b1c63cc451edb302a2
ORT_DIR=.ort
ORT_LIB="$ORT_DIR/lib/libonnxruntime.so.1"
STAMP="$ORT_DIR/lib/VERSION"

log() { echo "setup: $*" >&2; }

install_ort() {
	if [[ -f "$ORT_LIB" && -f "$STAMP" && "$(cat "$STAMP")" == "onnxruntime-node@$ORT_NPM_VERSION $ORT_NPM_SHA256" ]]; then
		return
	fi
	command -v npm >/dev/null || { log "npm is needed to fetch ONNX Runtime (apt-get install npm)"; exit 1; }
	local tmp
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' RETURN
	log "fetching onnxruntime-node@$ORT_NPM_VERSION from the npm registry (about 100 MB)"
	(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_NPM_VERSION" >/dev/null)
	local tgz="$tmp/onnxruntime-node-$ORT_NPM_VERSION.tgz"
	local got
	got="$(sha256sum "$tgz" | cut -d' ' -f1)"
	if [[ "$got" != "$ORT_NPM_SHA256" ]]; then
		log "checksum mismatch for onnxruntime-node-$ORT_NPM_VERSION.tgz: got $got, want $ORT_NPM_SHA256"
		exit 1
	fi
	tar -xzf "$tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	mkdir -p "$ORT_DIR/lib"
	cp "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$ORT_LIB.tmp"
	sync "$ORT_LIB.tmp"
	mv -f "$ORT_LIB.tmp" "$ORT_LIB"
	echo "onnxruntime-node@$ORT_NPM_VERSION $ORT_NPM_SHA256" > "$STAMP.tmp" && mv -f "$STAMP.tmp" "$STAMP"
	log "installed ONNX Runtime $ORT_NPM_VERSION in $ORT_LIB"
}

install_debs() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	local sudo=""
	[[ $(id -u) -eq 0 ]] || sudo="sudo"
	log "installing Debian packages: ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

VERSITYGW_VERSION=v1.8.0

# install_versitygw builds the S3 server of the object-storage tests. `go
# version -m` reads the module version the binary was built from, so a
# binary of another version is rebuilt and a matching one costs nothing.
install_versitygw() {
	local bin=.tools/versitygw
	if [[ -x "$bin" ]] && [[ "$(go version -m "$bin" 2>/dev/null | awk '$1 == "mod" {print $3}')" == "$VERSITYGW_VERSION" ]]; then
		return
	fi
	log "building versitygw $VERSITYGW_VERSION into $bin (slow the first time: several minutes on 2 cores)"
	mkdir -p .tools
	local tmp
	tmp="$(mktemp -d .tools/.versitygw-build.XXXXXX)" # same filesystem: the mv below is a rename
	trap 'rm -rf "$tmp"' RETURN
	GOBIN="$PWD/$tmp" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
	mv -f "$tmp/versitygw" "$bin"
	log "installed versitygw $VERSITYGW_VERSION in $bin"
}

# install_slurm never fails setup: without Slurm only the cluster tests skip.
# The packages' services are not started (policy-rc.d, or no init here): the
# tests start their own daemons with their own configuration and key.
install_slurm() {
	local pkgs=(slurmctld slurmd slurm-client munge) missing=()
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	local sudo=""
	[[ $(id -u) -eq 0 ]] || sudo="sudo -n"
	log "installing Debian packages for the Slurm tests: ${missing[*]}"
	if ! { $sudo apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
		log "could not install ${missing[*]}; the Slurm tests will skip"
	fi
}

command -v go >/dev/null || { log "Go 1.26 or newer is needed (https://go.dev/dl)"; exit 1; }
install_ort
install_versitygw
if [[ "${TLEARN_SKIP_DEBS:-}" != 1 ]] && command -v dpkg-query >/dev/null; then
	install_debs libopenblas-dev
	install_slurm
fi
go mod download
