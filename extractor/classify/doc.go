// Package classify labels images with a classifier exported by tlearn (one
// ONNX file: backbone, head and softmax; classifier.Build): Open loads it into
// an ONNX Runtime session, and Classifier.Classify runs every image of a
// dataset.Source through it with the decoding and resizing of extraction,
// so that a cached-feature model and its export give the same
// probabilities. TopK and ClassFolderLabels help a caller report the
// results.
//
// It owns the classifier's session and its pixel and probability buffers.
// It must not train or write anything (training belongs to head, the
// export to models/classifier), nor import extractor, extractor/cache or
// head: classifying needs no feature cache and no run folder.
package classify
