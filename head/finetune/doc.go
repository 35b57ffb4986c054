// Package finetune trains VGG16's block5 together with the dense head on
// cached block4_pool maps (MapsData), by running the training graph that
// package models/traingraph generates under ONNX Runtime, and evaluates
// fine-tuned weights with the matching eval graph (Evaluate). It owns the
// fine-tuning settings, the checkpoint that lets an interrupted run resume,
// and the assembly of the starting weights from a prepared model and an
// optional head run (StartWeights).
//
// MapsData may hold K views of every image ([N,K,C,h,w]): training draws
// one per image per epoch with head's ViewSampler, validation averages the
// views' probabilities or reads view 0 alone (MapsData.PlainView).
//
// The head's numerics (its initial weights, dropout masks, loss and the
// epoch loop) come from package head and head/internal/recipe, so that
// with block5 frozen FineTune and head.Train take the same steps. The
// caller initializes ONNX Runtime (internal/ortlib) once; the package opens
// sessions but never the library.
//
// It imports head, head/run (StartWeights reads a head run), models
// (block5's weights in a prepared model), models/traingraph (the graphs)
// and internal/ortlib; it must not import the extractor, extractor/cache,
// models/classifier or cmd/tlearn, nor open caches: callers hand it maps,
// weights and paths.
package finetune
