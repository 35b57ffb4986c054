// Profilestep prints where one train step of the generated block5 + head
// graph at VGG16's size (512 channels, 14×14 maps, the tutorial's head,
// batch 32) spends its time, per phase (forward, backward/<op>, update)
// and ONNX Runtime op type, from ORT's own profiler. It is a developer's
// tool for work on models/traingraph (BENCHMARKS.md, fine-tuning, quotes
// its output); it takes about a minute per formulation on two cores:
//
//	go run ./models/traingraph/internal/profilestep
//	go run ./models/traingraph/internal/profilestep -conv winograd,hybrid,gemm,gemm_conv_dx
//
// Flags:
//
//	-conv LIST      formulations of block5's convolutions (traingraph.Spec.Conv), comma-separated (default winograd)
//	-steps N        profiled steps after one warm-up step (default 3)
//	-threads N      ORT intra-op threads; 0 means one per core (default 0)
//	-ort-lib PATH   the ONNX Runtime library (else found as tlearn finds it)
//	-ort-config KV  session config entries, key=value,... (as TLEARN_ORT_CONFIG for the benchmarks)
//
// It owns nothing that tlearn runs: it imports models/traingraph, models
// and internal/ortlib, and nothing imports it.
package main
