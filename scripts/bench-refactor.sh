#!/usr/bin/env bash
# Same-run comparison of the binary before issue 9 (25765e1) and after, on the demo's data.
set -u
OLD=${OLD:?the binary of 25765e1} NEW=${NEW:-bin/tlearn} D=${DEMO_DIR:?a folder made by make demo}
W=/tmp/bench-refactor; rm -rf $W; mkdir -p $W
export TLEARN_DEVICE=cpu
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>$W/last.err || { echo FAIL "$@"; tail -3 $W/last.err; }; echo "$(echo "$(date +%s.%N) - $s" | bc)"; }
for round in 1 2; do
  for bin in OLD NEW; do
    B=${!bin}
    echo "$round $bin extract $(t $B extract --model $D/model-synth --data $D/mnist/train --cache $W/c-$bin-$round --size 32 --quiet)"
    echo "$round $bin train50 $(t $B train --train $D/report/cache/train --val $D/report/cache/val --epochs 50 --seed 1 --out $W/h-$bin-$round --quiet)"
    echo "$round $bin finetune2 $(t $B finetune --model $D/model-synth --train $D/report/cache/train --val $D/report/cache/val --epochs 2 --seed 1 --out $W/f-$bin-$round --quiet)"
  done
done
for bin in OLD NEW; do for r in 1 2; do tail -1 $W/h-$bin-$r/history.csv; tail -1 $W/f-$bin-$r/history.csv; done; done
