#!/usr/bin/env bash
# Issue 11: does the recommended recipe beat the peers? Re-runs the
# measurements of BENCHMARKS.md, "The recommended recipe": the head-only
# recipe against torch_head.py on the plain features (view 0), on
# vgg16-cifar5 (its five unseen classes, 32×32) and on MobileNetV2 (all ten
# classes, 32→224), and block5 fine-tuning with the recipe on vgg16-cifar5.
#
#   scripts/measure-recipe.sh [head|mobilenet|finetune]...   (default: all three)
#
# Images (per class, from ../shared's CIFAR-10 JPEGs): trained on
# TRAIN_FROM..+TRAIN_N (default 0000–0999), the head choosing its epoch on a
# holdout of those (--holdout 0.1), fine-tuning on all of them and keeping
# its last epoch; reported on REPORT_FROM..+REPORT_N (default 4000–4999;
# MobileNetV2: MOB_REPORT_N, default 500), which choose nothing. The
# fine-tuning rule was confirmed with REPORT_FROM=2000 (BENCHMARKS.md).
# The fine-tuning baseline is `compare` of the commit in BASE (default
# 69bbace, issue 11's start), built in a worktree, with --size 32 --seed 1.
#
# SEEDS (default "1 2 3"); FT_SEED (default 1); WORK (default
# /tmp/tlearn-recipe) keeps images, caches and runs for a rerun (use another
# WORK for other image ranges); SHARED (else
# $TLEARN_SHARED, else ../shared). Each result line starts with "RESULT".
# Hours on 2 cores: the MobileNetV2 caches hold 4 views at 224, and each
# fine-tuning takes 20–40 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED:-${TLEARN_SHARED:-$ROOT/../shared}}
WORK=${WORK:-/tmp/tlearn-recipe}
TRAIN_FROM=${TRAIN_FROM:-0}
TRAIN_N=${TRAIN_N:-1000}
REPORT_FROM=${REPORT_FROM:-4000}
REPORT_N=${REPORT_N:-1000}
MOB_REPORT_N=${MOB_REPORT_N:-500}
SEEDS=(${SEEDS:-1 2 3})
FT_SEED=${FT_SEED:-1}
BASE=${BASE:-69bbace}
PARTS=("$@")
((${#PARTS[@]})) || PARTS=(head mobilenet finetune)
TL=$ROOT/bin/tlearn
PY=/usr/bin/python3
C5=(dog frog horse ship truck)
C10=(airplane automobile bird cat deer dog frog horse ship truck)
RECIPE_HEAD=(--holdout 0.1 --save-best --tta --lr 3e-4 --epochs 120 --ema 0.999 --threads 1)
AUG=(--views 4 --augment flip,crop=0.8)

for f in "$SHARED/data/cifar10-train-jpeg.tar.gz" "$SHARED/models/vgg16-cifar5.onnx" "$SHARED/models/mobilenetv2-12-int8.onnx" "$SHARED/peers/torch_head.py"; do
	[[ -f $f ]] || { echo "measure-recipe: $f is missing (set SHARED or TLEARN_SHARED)" >&2; exit 1; }
done
make build >/dev/null # this checkout's tlearn, not an older binary
mkdir -p "$WORK"

RAW=$WORK/cifar10-jpeg
if [[ ! -d $RAW/train ]]; then
	mkdir -p "$RAW.tmp" && tar -xzf "$SHARED/data/cifar10-train-jpeg.tar.gz" -C "$RAW.tmp" && mv "$RAW.tmp" "$RAW"
fi
# link DIR FROM N CLASS...: DIR/<class>/ holds images FROM..FROM+N-1.
link() {
	local dir=$1 from=$2 n=$3
	shift 3
	[[ -f $dir/.done ]] && return
	rm -rf "$dir"
	for c in "$@"; do
		mkdir -p "$dir/$c"
		for ((i = from; i < from + n; i++)); do
			f=$(printf '%04d.jpg' "$i")
			ln -s "$RAW/train/$c/$f" "$dir/$c/$f"
		done
	done
	touch "$dir/.done"
}
prepare() { # prepare NAME ONNX [FLAGS...]
	local out=$WORK/$1 onnx=$2
	shift 2
	[[ -f $out/spec.json ]] || "$TL" models prepare --onnx "$onnx" --out "$out" "$@"
}
# view0 CACHE OUT: view 0's features (the plain images) and the labels as .npy.
view0() {
	"$PY" -c 'import sys, numpy as np
x = np.load(sys.argv[1] + "/features.npy"); np.save(sys.argv[2] + "-x.npy", np.ascontiguousarray(x[:, 0] if x.ndim == 3 else x))
np.save(sys.argv[2] + "-y.npy", np.load(sys.argv[1] + "/labels.npy"))' "$1" "$2"
}
accuracy() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1] + "/metrics.json"))["validation"]["accuracy"])' "$1"; }

# heads NAME TRAIN REPORT: the recipe's head and torch_head.py on view 0, every seed.
heads() {
	local name=$1 train=$2 report=$3
	view0 "$train" "$WORK/$name-train"
	view0 "$report" "$WORK/$name-report"
	for s in "${SEEDS[@]}"; do
		local run=$WORK/runs/$name-recipe-s$s
		[[ -f $run/metrics.json ]] || "$TL" train --train "$train" --val "$report" --out "$run" --force --seed "$s" "${RECIPE_HEAD[@]}" -q
		echo "RESULT $name head recipe seed $s: $(accuracy "$run")"
		echo "RESULT $name head torch_head seed $s: $("$PY" "$SHARED/peers/torch_head.py" "$WORK/$name-train-x.npy" "$WORK/$name-train-y.npy" \
			"$WORK/$name-report-x.npy" "$WORK/$name-report-y.npy" --seed "$s" --threads 1 | tail -1)"
	done
}

for part in "${PARTS[@]}"; do
	case $part in
	head | finetune)
		link "$WORK/c5-train" "$TRAIN_FROM" "$TRAIN_N" "${C5[@]}"
		link "$WORK/c5-report" "$REPORT_FROM" "$REPORT_N" "${C5[@]}"
		prepare vgg16-cifar5 "$SHARED/models/vgg16-cifar5.onnx"
		for set in train report; do
			"$TL" extract --model "$WORK/vgg16-cifar5" --data "$WORK/c5-$set" --cache "$WORK/c5-$set-k4" --size 32 --maps "${AUG[@]}" -q
		done
		if [[ $part == head ]]; then
			heads c5 "$WORK/c5-train-k4" "$WORK/c5-report-k4"
			continue
		fi
		run=$WORK/runs/c5-finetune-s$FT_SEED
		[[ -f $run/metrics.json ]] || "$TL" finetune --model "$WORK/vgg16-cifar5" --train "$WORK/c5-train-k4" --val "$WORK/c5-report-k4" \
			--out "$run" --force --epochs 30 --lr-schedule cosine --tta --seed "$FT_SEED" --threads 1 -q
		echo "RESULT c5 finetune recipe seed $FT_SEED: $(accuracy "$run")"
		if [[ ! -x $WORK/base/bin/tlearn ]]; then
			rm -rf "$WORK/base" && git worktree add --detach "$WORK/base" "$BASE" >/dev/null
			(cd "$WORK/base" && ln -sfn "$ROOT/.ort" .ort && go build -ldflags "-X github.com/tlearn/tlearn/internal/ortlib.InstallDir=$ROOT/.ort/lib" -o bin/tlearn ./cmd/tlearn)
		fi
		out=$WORK/runs/c5-compare-base
		[[ -f $out/report.md ]] || "$WORK/base/bin/tlearn" compare --model "$WORK/vgg16-cifar5" --train-data "$WORK/c5-train" \
			--val-data "$WORK/c5-report" --out "$out" --size 32 --seed "$FT_SEED" --threads 1 -q
		echo "RESULT c5 finetune starting compare seed $FT_SEED: $(accuracy "$out/finetune")"
		;;
	mobilenet)
		link "$WORK/c10-train" "$TRAIN_FROM" "$TRAIN_N" "${C10[@]}"
		link "$WORK/c10-report" "$REPORT_FROM" "$MOB_REPORT_N" "${C10[@]}"
		prepare mobilenet "$SHARED/models/mobilenetv2-12-int8.onnx" --feature-tensor 627
		for set in train report; do
			"$TL" extract --model "$WORK/mobilenet" --data "$WORK/c10-$set" --cache "$WORK/c10-$set-k4" "${AUG[@]}" -q
		done
		heads mobilenet "$WORK/c10-train-k4" "$WORK/c10-report-k4"
		;;
	*)
		echo "measure-recipe: unknown part $part (want head, mobilenet or finetune)" >&2
		exit 2
		;;
	esac
done
