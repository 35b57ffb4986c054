// Package quantize makes the int8 extractor of a prepared float32 VGG-family
// model (`tlearn models quantize`): static quantization in ONNX's QDQ form,
// laid out so that ONNX Runtime fuses every convolution into a QLinearConv
// (uint8 activations × int8 weights) and runs the max-pooling on uint8.
//
// The graph it builds: int8 weights, symmetric per output channel, behind a
// DequantizeLinear on axis 0; int32 biases with scale s_x·s_w[c] behind
// their own DequantizeLinear (a float bias blocks the fusion); uint8
// activations with one scale per tensor, a QuantizeLinear/DequantizeLinear
// pair on the first convolution's input (asymmetric: preprocessed pixels
// are signed) and after every Relu (zero point 0, scale max/255, which
// lets ORT drop the Relu), and around every MaxPool with the scale of its
// input; the features and maps outputs stay float32 after a
// DequantizeLinear. The activation ranges are the min/max over a seeded
// sample of the user's images (Settings.Images, default 64), measured by
// running the float32 graph with ReduceMin/ReduceMax outputs added.
//
// It owns the graph rewrite, the calibration and writing the quantized
// prepared-model folder (atomically, one writer). It imports models (the
// prepared-model folder), dataset (listing, decoding, preprocessing of the
// calibration images), models/onnxpb and models/internal/onnxgraph, and
// internal/ortlib for the calibration runs; it must not import extractor,
// head or the CLI, nor ONNX Runtime directly. Its errors name files and
// nodes, never CLI flags.
package quantize
