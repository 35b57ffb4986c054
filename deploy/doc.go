// Package deploy holds the runbooks of the sharded caching job on a
// cluster, not Go code: slurm/ (sbatch scripts: plan, an array of shards,
// a merge after them, and the script that chains them) and k8s/ (a plan
// Job, an Indexed Job of shards, a merge Job, the shared cache volume and
// the script that runs them in order). The README's "Running the caching
// job on a cluster" walks through both.
//
// Its test checks them without a cluster: every manifest decodes strictly
// into the k8s.io/api types with the settings the runbook relies on, every
// shell script passes bash -n, the shard count N of `--shard auto/N` agrees
// with the array's range and the Job's completions, and every tlearn
// command line in them parses against tlearn's CLI. Nothing imports it.
package deploy
