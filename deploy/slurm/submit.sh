#!/bin/bash
# Submits the caching job to Slurm: the plan (step 0), the array of 16
# shards once the plan succeeded, and the merge once every shard task has
# ended (afterany: see merge.sbatch). Edit the settings below, then run it
# from a login node:
#   deploy/slurm/submit.sh              the whole job
#   deploy/slurm/submit.sh --rerun 3,7  shards 3 and 7 again, then the merge
set -euo pipefail

# The job's settings, exported to the three scripts (sbatch passes the
# environment on). CACHE must be on a shared filesystem with flock.
export TLEARN=${TLEARN:-tlearn}
export MODEL=${MODEL:-/shared/tlearn/model}
export DATA=${DATA:-/shared/datasets/photos}
export CACHE=${CACHE:-/shared/tlearn/cache}
export VAL=${VAL:-0.2}
export SEED=${SEED:-1}

here=$(cd "$(dirname "$0")" && pwd)
# sbatch --parsable prints "ID" or "ID;CLUSTER".
submit() {
	local id
	id=$(sbatch --parsable "$@")
	echo "${id%%;*}"
}

mkdir -p "$CACHE"
if [[ "${1:-}" == --rerun ]]; then
	[[ "${2:-}" =~ ^[0-9]+([,-][0-9]+)*$ ]] || { echo "usage: $0 --rerun INDICES (e.g. 3,7 or 0-3)" >&2; exit 2; }
	shards=$(submit --array="$2" "$here/extract.sbatch")
else
	plan=$(submit "$here/plan.sbatch")
	# --kill-on-invalid-dep: a failed plan cancels the array instead of
	# leaving it pending forever.
	shards=$(submit --dependency=afterok:"$plan" --kill-on-invalid-dep=yes "$here/extract.sbatch")
	echo "plan:   job $plan"
fi
merge=$(submit --dependency=afterany:"$shards" "$here/merge.sbatch")
echo "shards: job $shards"
echo "merge:  job $merge (runs when every shard task has ended; squeue -j $merge, then its tlearn-merge-$merge.out)"
