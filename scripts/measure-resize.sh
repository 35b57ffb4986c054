#!/usr/bin/env bash
# Issue 11: which resize filter should be tlearn's default? Measures nearest,
# bilinear and bicubic on real images upsampled 32→224: CIFAR-10 JPEGs from
# ../shared, MobileNetV2-int8 features (tensor 627), the reference head with
# its default settings (50 epochs) and three seeds. BENCHMARKS.md, "Resize
# filter (issue 11)", records its output.
#
#   scripts/measure-resize.sh
#
# Tuning and reporting images are disjoint: per class, the head trains on
# images TRAIN_FROM.. (default 0000–0999, the pool any tuning would use) and
# is reported on images 4000.. (default 4000–4249), which nothing here or in
# the head's defaults was tuned on. Nothing is tuned: the head keeps its
# defaults, the accuracy is the final epoch's (not the best one, which would
# pick an epoch on the report images), and only the filter is compared.
#
# TRAIN_N, REPORT_N (default 1000, 250) images per class; FILTERS (default
# "nearest bilinear bicubic"); SEEDS (default "1 2 3"); WORK (default
# /tmp/tlearn-resize) holds the unpacked JPEGs, caches and runs, reused by a
# rerun; SHARED (else $TLEARN_SHARED, else ../shared) the real data and model.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED:-${TLEARN_SHARED:-$ROOT/../shared}}
WORK=${WORK:-/tmp/tlearn-resize}
TRAIN_N=${TRAIN_N:-1000}
REPORT_N=${REPORT_N:-250}
REPORT_FROM=${REPORT_FROM:-4000}
FILTERS=(${FILTERS:-nearest bilinear bicubic})
SEEDS=(${SEEDS:-1 2 3})
TL=$ROOT/bin/tlearn
PY=/usr/bin/python3
CLASSES=(airplane automobile bird cat deer dog frog horse ship truck)

for f in "$SHARED/data/cifar10-train-jpeg.tar.gz" "$SHARED/models/mobilenetv2-12-int8.onnx"; do
	[[ -f $f ]] || { echo "measure-resize: $f is missing (set SHARED or TLEARN_SHARED)" >&2; exit 1; }
done
[[ -x $TL ]] || make build
mkdir -p "$WORK"

# The images: symlinked class folders, train = the first TRAIN_N of each
# class, report = REPORT_N from REPORT_FROM on.
RAW=$WORK/cifar10-jpeg
if [[ ! -d $RAW/train ]]; then
	mkdir -p "$RAW.tmp" && tar -xzf "$SHARED/data/cifar10-train-jpeg.tar.gz" -C "$RAW.tmp" && mv "$RAW.tmp" "$RAW"
fi
DATA=$WORK/data-$TRAIN_N-$REPORT_FROM-$REPORT_N
if [[ ! -f $DATA/.done ]]; then
	rm -rf "$DATA"
	for c in "${CLASSES[@]}"; do
		mkdir -p "$DATA/train/$c" "$DATA/report/$c"
		for ((i = 0; i < TRAIN_N; i++)); do
			f=$(printf '%04d.jpg' "$i")
			ln -s "$RAW/train/$c/$f" "$DATA/train/$c/$f"
		done
		for ((i = REPORT_FROM; i < REPORT_FROM + REPORT_N; i++)); do
			f=$(printf '%04d.jpg' "$i")
			ln -s "$RAW/train/$c/$f" "$DATA/report/$c/$f"
		done
	done
	touch "$DATA/.done"
fi
echo "images: $DATA (train ${TRAIN_N}/class = 0000–$(printf '%04d' $((TRAIN_N - 1))), report ${REPORT_N}/class = $REPORT_FROM–$((REPORT_FROM + REPORT_N - 1)))"

MODEL=$WORK/mobilenet
[[ -f $MODEL/spec.json ]] || $TL models prepare --onnx "$SHARED/models/mobilenetv2-12-int8.onnx" --feature-tensor 627 --out "$MODEL"

RESULTS=$WORK/results-$TRAIN_N-$REPORT_FROM-$REPORT_N.tsv
printf 'filter\textract_images_per_s\tseed\tfinal_val_accuracy\tbest_val_accuracy\n' >"$RESULTS"
for filter in "${FILTERS[@]}"; do
	C=$WORK/cache-$TRAIN_N-$REPORT_FROM-$REPORT_N-$filter
	t0=$EPOCHREALTIME
	for part in train report; do
		$TL extract --quiet --model "$MODEL" --data "$DATA/$part" --cache "$C/$part" --size 224 --interpolation "$filter"
	done
	t1=$EPOCHREALTIME
	n=$((10 * (TRAIN_N + REPORT_N)))
	# A rerun finds the caches done in no time: report the first run's rate
	# (the load of the moment counts as much as the filter: see the rounds below).
	if [[ -f $C/rate ]]; then rate=$(cat "$C/rate"); else
		rate=$(awk -v n=$n -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
		echo "$rate" >"$C/rate"
	fi
	echo "$filter: extracted $n images at $rate images/s"
	for seed in "${SEEDS[@]}"; do
		R=$WORK/run-$TRAIN_N-$REPORT_FROM-$REPORT_N-$filter-seed$seed
		[[ -f $R/metrics.json ]] || $TL train --quiet --train "$C/train" --val "$C/report" --out "$R" --seed "$seed"
		acc=$($PY -c "import json;m=json.load(open('$R/metrics.json'));print('%.4f\t%.4f'%(m['final']['val_accuracy'],m['best']['val_accuracy']))")
		printf '%s\t%s\t%s\t%s\n' "$filter" "$rate" "$seed" "$acc" >>"$RESULTS"
		echo "$filter seed $seed: final val accuracy ${acc%%$'\t'*} (on the report images)"
	done
done

# Extraction speed. The shared machine's load drifts over the minutes each
# filter's caches take, so the rates above are not comparable: here the
# filters take turns, ROUNDS times, extracting the report images into a
# throwaway cache.
ROUNDS=${ROUNDS:-2}
SPEED=$WORK/speed-$REPORT_FROM-$REPORT_N.tsv
printf 'round\tfilter\timages_per_s\n' >"$SPEED"
for ((r = 1; r <= ROUNDS; r++)); do
	for filter in "${FILTERS[@]}"; do
		S=$WORK/speed-cache
		rm -rf "$S"
		t0=$EPOCHREALTIME
		$TL extract --quiet --model "$MODEL" --data "$DATA/report" --cache "$S" --size 224 --interpolation "$filter"
		t1=$EPOCHREALTIME
		rate=$(awk -v n=$((10 * REPORT_N)) -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
		printf '%s\t%s\t%s\n' "$r" "$filter" "$rate" >>"$SPEED"
		echo "speed round $r, $filter: $rate images/s"
	done
done
rm -rf "$S"

echo
echo "| filter | final val accuracy, mean | min | max | extract images/s (rounds) |"
echo "|---|---|---|---|---|"
$PY - "$RESULTS" "$SPEED" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
speed = list(csv.DictReader(open(sys.argv[2]), delimiter="\t"))
for f in dict.fromkeys(r["filter"] for r in rows):
    acc = [float(r["final_val_accuracy"]) for r in rows if r["filter"] == f]
    rates = [r["images_per_s"] for r in speed if r["filter"] == f]
    print("| %s | %.4f | %.4f | %.4f | %s |" % (f, sum(acc) / len(acc), min(acc), max(acc), ", ".join(rates)))
PY
echo "(per-seed rows: $RESULTS; speed rounds: $SPEED)"
