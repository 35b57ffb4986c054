// Package convert is the plumbing that the archive converters
// (dataset/cifar, dataset/mnist) share: checking their settings, making
// class folders, and writing PNG files atomically from a few goroutines
// while counting them on a progress.Reporter.
//
// It owns no format: reading CIFAR-10 or MNIST belongs to their packages,
// and the public settings and summary types to dataset. It must not import
// models, extractor or head.
package convert
