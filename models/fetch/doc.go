// Package fetch downloads published ONNX models: an archive (the ONNX
// Model Zoo's VGG16 tar.gz files are presets) is downloaded into a
// download folder, resumed with HTTP Range requests after an interruption,
// checked against its size and sha256 before anything reads it, unpacked
// safely (no entry leaves the folder), and test-run under ONNX Runtime on
// the archive's test_data_set_* folders.
//
// It owns the transfer, the archive checks, the unpacked folder's layout
// and the test-data comparison. One fetch at a time writes a model: Get
// holds internal/fsutil's lock of the unpacked folder, which covers its
// archive and part file too. Progress goes to an internal/progress
// Reporter; its errors are sentinels (ErrDownloadMismatch, ErrInterrupted,
// ...) that the CLI turns into advice, and never name a CLI flag.
//
// It imports models (to decode tensors) and internal packages. It must not
// import head, extractor or the other models subpackages, and models must
// not import it. It is the one package under models that imports ONNX
// Runtime (for the test-data run, through sessions it owns).
package fetch
