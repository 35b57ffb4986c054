package run_test

import (
	"context"
	"log"
	"path/filepath"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
)

// mustOpenCaches opens the repository's fixture caches (testdata/v1): ten
// MNIST digits each, with 32 features per image from a tiny synthetic
// VGG16. The caller closes them.
func mustOpenCaches() (train, val *cache.Cache) {
	v1 := filepath.Join("..", "..", "testdata", "v1")
	train, err := cache.Open(filepath.Join(v1, "cache", "train"))
	if err != nil {
		log.Fatal(err)
	}
	val, err = cache.Open(filepath.Join(v1, "cache", "val"))
	if err != nil {
		log.Fatal(err)
	}
	return train, val
}

// mustTrainHead trains a head with 64 hidden units for three epochs on the
// features of train, validating on val, and evaluates it on val.
func mustTrainHead(train, val *cache.Cache) (*head.Result, *head.Report) {
	// A cache's arrays are memory maps; head.Data reads them in place.
	data := func(c *cache.Cache) *head.Data {
		return &head.Data{X: c.Features, Y: c.Labels, Classes: c.Manifest.Classes}
	}
	res, err := head.Train(context.Background(), data(train), data(val), head.Settings{Hidden: 64, Epochs: 3, Seed: 1}, nil)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := head.Evaluate(context.Background(), res.Weights, data(val), 5)
	if err != nil {
		log.Fatal(err)
	}
	return res, rep
}
