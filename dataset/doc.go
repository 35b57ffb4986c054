// Package dataset reads labelled images: class-folder sources, stratified
// seeded splits, decoding, resizing and per-backbone preprocessing into
// batch tensors.
//
// The path of an image to a model input:
//
//	Open (list class folders) -> Split (train/validation indices)
//	  -> NewLoader + Next: DecodeFile -> Resize -> Preprocess, one batch
//	     ahead of the caller, into the caller's float32 tensor
//
// Decoding checks the image size before decoding (Settings.MaxPixels) and
// converts every format to RGB (*image.Gray or opaque *image.RGBA; alpha
// dropped as PIL's convert("RGB") does). Bad files are *DecodeError values
// naming the file. Label ids follow the sorted class-folder names, as
// Keras' flow_from_directory numbers them.
//
// It also owns what the archive converters of its sub-packages share in
// their API (ConvertSettings, ConvertSummary, PrepareOutput): dataset/cifar
// and dataset/mnist write PNG class folders from the public distributions
// of CIFAR-10 and MNIST, every file atomically (internal/fsutil). CopyItems
// writes a split as class folders of hard links or copies. Their output
// carries a MarkerFile that says whether it is complete: PrepareOutput
// marks it incomplete before the first file, FinishOutput complete after
// the last, and Open and OpenFiles refuse an incomplete one with an
// *IncompleteError (CheckComplete); the same Origin restarts it.
//
// It knows nothing of ONNX or training: it must not import models,
// extractor or head (they import it), nor its own sub-packages.
package dataset
