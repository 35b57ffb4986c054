#!/bin/bash
# Runs the caching job on Kubernetes in order: the cache volume, the plan
# (step 0; must complete), the Indexed Job of shards (waited for until it
# is Complete or Failed: a failed index must not keep the merge from
# running), then the merge, whose log names any missing shard.
#   deploy/k8s/run.sh            the whole job, in the current namespace
#   deploy/k8s/run.sh --rerun    the shards again (only missing or
#                                incomplete ones do work), then the merge
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# job_end NAME: waits until Job NAME is Complete (exit 0) or Failed (exit 1).
job_end() {
	local state
	while :; do
		state=$(kubectl get job "$1" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')
		case " $state " in
		*" Complete "*) return 0 ;;
		*" Failed "*) return 1 ;;
		esac
		sleep 30
	done
}

if [[ "${1:-}" != --rerun ]]; then
	kubectl apply -f "$here/cache-pvc.yaml"
	kubectl delete job tlearn-plan --ignore-not-found
	kubectl apply -f "$here/plan-job.yaml"
	job_end tlearn-plan || { echo "run.sh: the plan failed: kubectl logs job/tlearn-plan" >&2; exit 1; }
fi
kubectl delete job tlearn-extract tlearn-merge --ignore-not-found
kubectl apply -f "$here/extract-job.yaml"
if ! job_end tlearn-extract; then
	echo "run.sh: some shards failed (kubectl get job tlearn-extract -o jsonpath='{.status.failedIndexes}'); merging checks them" >&2
fi
kubectl apply -f "$here/merge-job.yaml"
if ! job_end tlearn-merge; then
	echo "run.sh: the merge refused: kubectl logs job/tlearn-merge -c check names the shards; then: $0 --rerun" >&2
	exit 1
fi
echo "run.sh: the cache is merged in /shared/cache on the volume tlearn-cache"
