// Package classifier builds the one-file ONNX classifier that tlearn
// exports: a prepared extractor (models.Spec and its extractor.onnx) with
// the preprocessing put in front of it as graph ops, the trained dense
// head (and fine-tuned block5, when given) after it, and the class names,
// input size and preprocessing recorded in its metadata_props (Build).
// ReadInfo reads that metadata back and checks the graph's input and
// output against it, so that tools can run the file without tlearn's
// other files.
//
// It owns the classifier's contract: tensor names (Input, Output), input
// layout and metadata keys (Meta*). It runs ONNX Runtime only through
// internal/ortlib's Probe, for Build's check run. It imports models and
// must not import head, extractor, ONNX Runtime or the other models
// subpackages; models must not import it.
package classifier
