// Package models reads, inspects, transforms and writes ONNX files: cutting
// a backbone at its feature tensors (prepare), backbone presets, synthetic
// VGG16s for tests and benchmarks, downloads of real weights, the generated
// fine-tuning training graph, and export of the final classifier.
// It runs no sessions itself except short probes; the extractor and head
// packages own long-running ONNX Runtime work.
package models
