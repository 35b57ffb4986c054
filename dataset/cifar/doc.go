// Package cifar converts CIFAR-10, as distributed at
// https://www.cs.toronto.edu/~kriz/cifar.html, into PNG class folders that
// dataset.Open reads: Convert takes the python version (pickled batches)
// or the binary version, as its .tar.gz, a .tar or the unpacked folder.
//
// It owns the reading of both versions, including a small unpickler that
// interprets the data a CIFAR batch holds (dicts, lists, NumPy arrays) and
// never calls code. Every length in outside bytes is checked before use.
//
// It must not import models, extractor or head: converting a dataset
// knows nothing of backbones or training.
package cifar
