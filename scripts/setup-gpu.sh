#!/usr/bin/env bash
# Installs a GPU-capable ONNX Runtime in .ort-gpu/lib (ignored by git), beside
# the CPU library of scripts/setup.sh, which stays the default. Called by
# `make setup-gpu`, and so by `make test`; idempotent (a second run only
# checks the stamp).
#
# Where it comes from: the npm packages of asus4/onnxruntime-unity (MIT),
# which carry Microsoft's ONNX Runtime 1.29 release files as plain files:
#  * com.github.asus4.onnxruntime: the core Linux x64 libonnxruntime.so
#    (soname libonnxruntime.so.1, RUNPATH $ORIGIN; Microsoft's CPU build,
#    without the CUDA bridge, so tlearn attaches the CUDA provider as a
#    plugin) and libonnxruntime_providers_shared.so;
#  * com.github.asus4.onnxruntime.linux-x64-gpu: libonnxruntime_providers_cuda.so
#    (built for CUDA 13: libcudart.so.13, libcublas.so.13, cuDNN 9 loaded at
#    run time) and the TensorRT provider (not installed).
# `npm pack` only downloads the tarballs (no install script runs). They are
# kept in a cache outside the checkout (329 MB, downloaded once;
# $TLEARN_NPM_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/tlearn/npm) and
# checked against the sha256 below before anything is unpacked; the libraries
# land in .ort-gpu/lib in one rename of a fully written folder.
set -euo pipefail
cd "$(dirname "$0")/.."

GPU_NPM_VERSION=0.4.9 # ONNX Runtime 1.29.0
CORE_PKG=com.github.asus4.onnxruntime
CORE_SHA256=e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d
CUDA_PKG=com.github.asus4.onnxruntime.linux-x64-gpu
CUDA_SHA256=2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412
DEST=.ort-gpu/lib
STAMP="$DEST/VERSION"
WANT_STAMP="$CORE_PKG@$GPU_NPM_VERSION $CORE_SHA256 $CUDA_PKG@$GPU_NPM_VERSION $CUDA_SHA256"
CACHE="${TLEARN_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tlearn/npm}"
LIBS=(libonnxruntime.so.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)

log() { echo "setup-gpu: $*" >&2; }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT_STAMP" ]]; then
	ok=1
	for l in "${LIBS[@]}"; do [[ -f "$DEST/$l" ]] || ok=0; done
	((ok)) && exit 0
fi

# fetch PKG SHA256 prints the path of the verified tarball in the cache,
# downloading it only when the cache lacks it or holds a damaged copy.
fetch() {
	local pkg=$1 want=$2 tgz="$CACHE/$1-$GPU_NPM_VERSION.tgz" got
	if [[ -f "$tgz" ]] && [[ "$(sha256sum "$tgz" | cut -d' ' -f1)" == "$want" ]]; then
		echo "$tgz"
		return
	fi
	command -v npm >/dev/null || { log "npm is needed to fetch ONNX Runtime (apt-get install npm)"; exit 1; }
	mkdir -p "$CACHE"
	local tmp
	tmp="$(mktemp -d "$CACHE/.fetch.XXXXXX")" # same filesystem: the mv below is a rename
	log "fetching $pkg@$GPU_NPM_VERSION from the npm registry into $CACHE"
	(cd "$tmp" && npm pack --silent "$pkg@$GPU_NPM_VERSION" >/dev/null)
	got="$(sha256sum "$tmp/$pkg-$GPU_NPM_VERSION.tgz" | cut -d' ' -f1)"
	if [[ "$got" != "$want" ]]; then
		rm -rf "$tmp"
		log "checksum mismatch for $pkg-$GPU_NPM_VERSION.tgz: got $got, want $want"
		exit 1
	fi
	mv -f "$tmp/$pkg-$GPU_NPM_VERSION.tgz" "$tgz"
	rm -rf "$tmp"
	echo "$tgz"
}

core="$(fetch "$CORE_PKG" "$CORE_SHA256")"
cuda="$(fetch "$CUDA_PKG" "$CUDA_SHA256")"

mkdir -p .ort-gpu
tmp="$(mktemp -d .ort-gpu/.lib.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
src=package/Plugins/Linux/x64
tar --no-same-owner -xzf "$core" -C "$tmp" "$src/libonnxruntime.so" "$src/libonnxruntime_providers_shared.so"
tar --no-same-owner -xzf "$cuda" -C "$tmp" "$src/libonnxruntime_providers_cuda.so"
mkdir "$tmp/lib"
# The core library's soname is libonnxruntime.so.1: the name .ort/lib uses too.
mv "$tmp/$src/libonnxruntime.so" "$tmp/lib/libonnxruntime.so.1"
mv "$tmp/$src/libonnxruntime_providers_shared.so" "$tmp/$src/libonnxruntime_providers_cuda.so" "$tmp/lib/"
chmod 0755 "$tmp"/lib/*.so*
echo "$WANT_STAMP" >"$tmp/lib/VERSION"
sync "$tmp"/lib/*
# Swap the folders: the old one (if any) moves aside, the new one is renamed
# in, so a reader sees the whole old set, no folder, or the whole new set,
# never a half-written library.
old=""
if [[ -e "$DEST" ]]; then
	old="$tmp/old"
	mv "$DEST" "$old"
fi
mv "$tmp/lib" "$DEST"
log "installed ONNX Runtime 1.29.0 with the CUDA provider in $DEST"
