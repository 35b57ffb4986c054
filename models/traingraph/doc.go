// Package traingraph generates the ONNX graphs that fine-tune VGG16's
// block5 with a dense head under ONNX Runtime: the train step (forward,
// backward from a table of gradient rules, and an Adam or SGD update, all
// in one graph) and the evaluation graph. A Spec describes the graph
// completely; TrainStep and Eval return a Graph that lists the inputs and
// outputs a trainer binds tensors to, and the Params with their layouts
// (Winograd, im2col or Conv forms of block5's convolutions store weights
// differently; Param.FromTorchvision and ToTorchvision convert).
//
// It owns the graph generator and its naming contract (MapsInput,
// LRInput, MomentName, NextName, ...). It runs nothing: head/finetune owns
// the sessions. It imports models (tensor constructors, block5's parameter
// names) and must not import head, extractor, ONNX Runtime or the other
// models subpackages; models must not import it.
package traingraph
