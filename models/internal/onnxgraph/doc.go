// Package onnxgraph holds the small ONNX graph-editing helpers that
// package models and its subpackages (models/classifier, models/traingraph)
// share: node and attribute constructors, value infos and declared shapes,
// and the renaming, naming and pruning steps of a graph cut or extension.
//
// It is internal so that models need not export them: they are tools for
// building graphs, not part of tlearn's library surface. It works on
// onnxpb messages only and must not import models (which imports it), any
// other tlearn package, or ONNX Runtime.
package onnxgraph
