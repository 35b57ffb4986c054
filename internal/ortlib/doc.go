// Package ortlib finds, loads and describes the ONNX Runtime shared library,
// builds session options for a requested device (the CUDA fallback; a
// plugin CUDA provider attached through the C API calls that onnxruntime_go
// does not wrap, GetEpDevices and SessionOptionsAppendExecutionProvider_V2,
// in a small cgo shim: epdevice.go and ortep.h; and
// CheckCUDA's account of why CUDA is unusable: the provider file, its
// libraries resolved as the dynamic loader would, the driver), runs a session so that a
// context can cancel it (RunWithContext), and runs a model once on CPU for
// short checks (Probe, with ErrNoORT before Init).
//
// It exists as a small internal package because the CLI, the extractor, the
// fine-tune trainer and every test that runs ORT need the same search order
// and the same CUDA fallback rule; it must not hold any model or ML logic,
// nor import any other tlearn package.
// The ORT environment is process-global: cmd/tlearn calls Init once in main,
// tests call it through ortlibtest.Init; libraries only receive ready sessions.
package ortlib
