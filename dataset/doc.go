// Package dataset reads labelled images: class-folder sources, converters
// that turn CIFAR-10 archives and MNIST idx files into class folders,
// stratified seeded splits, decoding, resizing and per-backbone
// preprocessing into batch tensors. It knows nothing of ONNX or training.
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
// ConvertCIFAR10 and ConvertMNIST write PNG class folders from the public
// distributions of those datasets (CIFAR-10's python pickles are read by a
// small unpickler that interprets data and never code). Every file they
// write is written atomically (internal/fsutil).
package dataset
