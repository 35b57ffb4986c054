// Package experiment runs tlearn's multi-step jobs as library calls: the
// split of a class-folder dataset into training and validation folders,
// one extraction into a feature cache (or a train/val pair) or one shard of
// it (with the plan that lists the data once, WritePlan, and the check and
// merge of the shards, CheckShards and MergeShards), one head run,
// one fine-tuning run, the evaluation of a run on a cache and one export,
// each from folders on disk to folders on disk; a sweep of head runs over a
// grid of settings (Sweep), and the reference comparison of head-only
// training with block5 fine-tuning beside the recommended recipe
// (Compare, Recommended), with int8 rows on the model quantized by
// models/quantize beside the float32 ones (CompareSettings.Int8), which
// chains the others stage by stage and resumes an interrupted report.
//
// It owns the orchestration that sits between the command line and the
// libraries: which caches go with which run, whether a cache fits a run,
// when a finished run or stage is reused, how a fine-tune run's starting
// weights are assembled, and the files a sweep or a comparison leaves
// (sweep.csv, stages.json, report.md, curves.png). The numbers come from
// dataset, extractor, head and models.
//
// It must not parse flags, print to the terminal or name command-line flags
// in its errors: it reports through internal/progress and returns typed
// errors (ErrSettings, ErrNoValCache, ErrNotVGG, ErrCacheLayout,
// ErrModelChanged, ErrPlanMismatch, ErrNoShards, *NoMapsError, rundir.ErrExists) to which cmd/tlearn adds
// its advice. It must not load ONNX Runtime either: the caller initializes
// it (internal/ortlib) before Extract, FineTune, Export or Compare, and in
// EvaluateSettings.Runtime for a fine-tuned run's evaluation. It imports
// dataset, extractor, extractor/cache, head, head/finetune, head/run,
// models, models/classifier, models/quantize and internal packages, never onnxruntime_go or
// gonum directly; only cmd/tlearn imports it (and internal/compat's tests).
package experiment
