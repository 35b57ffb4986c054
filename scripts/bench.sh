#!/usr/bin/env bash
# `make bench`: tlearn against the PyTorch peers in ../shared/peers, on real data
# from ../shared, each pair measured in the same run. Prints every result line;
# BENCHMARKS.md records them with the command that produced them.
#
#   scripts/bench.sh [stage...]     stages: extract head finetune compare signals (default: all)
#
# SHARED (else $TLEARN_SHARED, else ../shared) is the folder of real data, models
# and peers. BENCH_DIR (default /tmp/tlearn-bench) holds unpacked images, caches and runs;
# they are reused between invocations. Needs Debian's python3-torch and
# python3-torchvision for the peers (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED:-${TLEARN_SHARED:-$ROOT/../shared}}
export TLEARN_SHARED=$SHARED # where the realdata-tagged Go benchmarks look
BENCH_DIR=${BENCH_DIR:-/tmp/tlearn-bench}
TL=$ROOT/bin/tlearn
PY=/usr/bin/python3
stages=("$@")
((${#stages[@]})) || stages=(extract head finetune compare signals)

if [[ ! -d $SHARED/data || ! -d $SHARED/models ]]; then
	echo "bench: $SHARED (real data and models) is absent; nothing to measure" >&2
	exit 0
fi
if ! $PY -c 'import torch, torchvision' 2>/dev/null; then
	echo "bench: installing Debian's python3-torch and python3-torchvision for the peers" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-torchvision >/dev/null
fi
mkdir -p "$BENCH_DIR"
say() { printf '\n== %s\n' "$*"; }

# cifar_subset OUT TRAIN_PER_CLASS VAL_PER_CLASS CLASS... : symlinked class
# folders OUT/train and OUT/val from the CIFAR-10 JPEGs (first N, next M).
cifar_subset() {
	local out=$1 ntrain=$2 nval=$3
	shift 3
	[[ -f $out/.done ]] && return
	local raw=$BENCH_DIR/cifar10-jpeg
	if [[ ! -d $raw/train ]]; then
		mkdir -p "$raw" && tar -xzf "$SHARED/data/cifar10-train-jpeg.tar.gz" -C "$raw"
	fi
	rm -rf "$out"
	for c in "$@"; do
		mkdir -p "$out/train/$c" "$out/val/$c"
		local files
		mapfile -t files < <(ls "$raw/train/$c" | sort | head -n $((ntrain + nval)))
		for f in "${files[@]:0:ntrain}"; do ln -s "$raw/train/$c/$f" "$out/train/$c/$f"; done
		for f in "${files[@]:ntrain:nval}"; do ln -s "$raw/train/$c/$f" "$out/val/$c/$f"; done
	done
	touch "$out/.done"
}

# sigterm_latency LABEL DELAY CMD... : starts CMD, sends it SIGTERM after DELAY
# seconds and prints how long it took to exit after the signal, and its status.
sigterm_latency() {
	local label=$1 delay=$2
	shift 2
	"$@" &
	local pid=$! rc=0
	sleep "$delay"
	local t0=$EPOCHREALTIME
	if ! kill -TERM "$pid" 2>/dev/null; then
		wait "$pid" || true
		echo "$label: finished within ${delay} s, before SIGTERM: nothing measured"
		return
	fi
	wait "$pid" || rc=$?
	local t1=$EPOCHREALTIME
	awk -v l="$label" -v a="$t0" -v b="$t1" -v rc="$rc" 'BEGIN { printf "%s: exit %d, %.3f s after SIGTERM\n", l, rc, b - a }'
}

ALL10=(airplane automobile bird cat deer dog frog horse ship truck)
CIFAR5_NEW=(dog frog horse ship truck) # the classes vgg16-cifar5 was not trained on

for stage in "${stages[@]}"; do
	case $stage in
	extract)
		say "extract: synthetic VGG16 at 224, real CIFAR JPEGs; tlearn end to end vs a bare ORT session, then the torch peer"
		go test -tags realdata -run '^$' -bench 'BenchmarkExtract' -benchtime 1x -timeout 30m ./extractor/ | grep -E '^Benchmark|ratio|images/s|FAIL|realdata:' || true
		$PY "$SHARED/peers/torch_extract.py" --size 224 --batch 8 --threads 2 --iters 3
		say "extract int8 (issue 13): vgg16-cifar5 float32 vs models quantize's int8, at 224 and 32, batch 8, each against its own bare ORT session"
		go test -tags realdata -run '^$' -bench 'BenchmarkInt8Extract' -benchtime 1x -timeout 30m ./models/quantize/ | grep -E '^Benchmark|speedup|FAIL|realdata:' || true
		;;
	head)
		say "head: MobileNetV2-int8 features (tensor 627), CIFAR-10 1,000 + 250 per class; 50 epochs, tlearn vs torch_head.py on the same .npy"
		cifar_subset "$BENCH_DIR/cifar10-1000-250" 1000 250 "${ALL10[@]}"
		[[ -f $BENCH_DIR/mobilenet/spec.json ]] || $TL models prepare --onnx "$SHARED/models/mobilenetv2-12-int8.onnx" --feature-tensor 627 --out "$BENCH_DIR/mobilenet"
		for part in train val; do
			/usr/bin/time -f "tlearn extract $part: %e s wall, %M KiB max RSS" $TL extract --quiet --model "$BENCH_DIR/mobilenet" --data "$BENCH_DIR/cifar10-1000-250/$part" --cache "$BENCH_DIR/cache-mobilenet/$part"
		done
		C=$BENCH_DIR/cache-mobilenet
		rm -rf "$BENCH_DIR/run-mobilenet-head"
		/usr/bin/time -f 'tlearn train: %e s wall, %M KiB max RSS' $TL train --quiet --train "$C/train" --val "$C/val" --out "$BENCH_DIR/run-mobilenet-head" --seed 1
		$PY -c "import json;m=json.load(open('$BENCH_DIR/run-mobilenet-head/metrics.json'));print('tlearn head: %.2f s, final val_accuracy %.4f, best %.4f'%(m['seconds'],m['final']['val_accuracy'],m['best']['val_accuracy']))"
		$PY "$SHARED/peers/torch_head.py" "$C/train/features.npy" "$C/train/labels.npy" "$C/val/features.npy" "$C/val/labels.npy" --epochs 50 --threads 2 --seed 1 | tail -1
		;;
	finetune)
		say "finetune: one train step of block5 + head at 14x14 maps, batch 32; tlearn vs torch_finetune.py"
		go test -run '^$' -bench 'BenchmarkFineTuneStep' -benchtime 3x -timeout 30m ./head/finetune/ | grep -E '^Benchmark|images/s|FAIL' || true
		$PY "$SHARED/peers/torch_finetune.py" --maps 14 --batch 32 --threads 2 --iters 3
		;;
	compare)
		say "compare: vgg16-cifar5 transferred to dog/frog/horse/ship/truck at 32x32, 1,000 + 250 per class; head-only vs block5 fine-tuned"
		cifar_subset "$BENCH_DIR/cifar5-1000-250" 1000 250 "${CIFAR5_NEW[@]}"
		[[ -f $BENCH_DIR/vgg16-cifar5/spec.json ]] || $TL models prepare --onnx "$SHARED/models/vgg16-cifar5.onnx" --out "$BENCH_DIR/vgg16-cifar5"
		$TL compare --model "$BENCH_DIR/vgg16-cifar5" --train-data "$BENCH_DIR/cifar5-1000-250/train" --val-data "$BENCH_DIR/cifar5-1000-250/val" \
			--size 32 --out "$BENCH_DIR/compare-cifar5"
		cat "$BENCH_DIR/compare-cifar5/report.md"
		;;
	signals)
		say "signals: time from SIGTERM to exit at 224 on the synthetic VGG16 (seed 1), CIFAR cat/dog JPEGs; extract and finetune"
		S=$BENCH_DIR/signals
		D=$BENCH_DIR/cifar2-100-20
		mkdir -p "$S"
		cifar_subset "$D" 100 20 cat dog
		[[ -f $S/vgg16.onnx ]] || $TL models synth vgg16 --seed 1 --out "$S/vgg16.onnx"
		[[ -f $S/model/spec.json ]] || $TL models prepare --onnx "$S/vgg16.onnx" --out "$S/model"
		for part in train val; do # resumes, or says up to date
			$TL extract --quiet --model "$S/model" --data "$D/$part" --cache "$S/cache-$part" --size 224 --maps
		done
		rm -rf "$S/cache-scratch"
		sigterm_latency "tlearn extract at 224 (batch 8)" 5 $TL extract --quiet --model "$S/model" --data "$D/train" --cache "$S/cache-scratch" --size 224 --maps
		rm -rf "$S/run-ft" "$S"/.run-ft.*
		sigterm_latency "tlearn finetune at 224 (14x14 maps, batch 32)" 15 $TL finetune --quiet --model "$S/model" --train "$S/cache-train" --val "$S/cache-val" --out "$S/run-ft" --epochs 50
		;;
	*) echo "bench: unknown stage $stage (want extract, head, finetune, compare or signals)" >&2; exit 2 ;;
	esac
done
