package finetune_test

import (
	"context"
	"fmt"
	"log"
	"path/filepath"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head/finetune"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
)

// Fine-tune block5 and a fresh head on the block4_pool maps of two caches,
// as `tlearn finetune` does. The prepared model and the caches are the
// repository's fixtures (testdata/v1): a tiny synthetic VGG16 whose maps are
// 32×2×2, ten MNIST digits per cache.
func ExampleFineTune() {
	if _, err := ortlib.Init(""); err != nil { // once per process, in main
		log.Fatal(err)
	}
	v1 := filepath.Join("..", "..", "testdata", "v1")
	modelDir := filepath.Join(v1, "model")
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		log.Fatal(err)
	}
	sha, err := models.ExtractorSHA256(modelDir)
	if err != nil {
		log.Fatal(err)
	}
	// block5's tensors of the prepared model; no head run: the head starts
	// fresh, as head.Train's would.
	start, err := finetune.StartWeights(modelDir, spec, sha, "")
	if err != nil {
		log.Fatal(err)
	}

	open := func(part string) (*cache.Cache, *finetune.MapsData) {
		c, err := cache.Open(filepath.Join(v1, "cache", part))
		if err != nil {
			log.Fatal(err)
		}
		s := c.Manifest.MapsShape // C, h, w
		return c, &finetune.MapsData{Maps: c.Maps, Y: c.Labels, Classes: c.Manifest.Classes, Shape: [3]int{s[0], s[1], s[2]}}
	}
	trainCache, train := open("train")
	defer trainCache.Close()
	valCache, val := open("val")
	defer valCache.Close()

	s := finetune.Settings{Runtime: ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}}
	s.Epochs, s.Seed = 2, 1
	res, err := finetune.FineTune(context.Background(), train, val, start, s, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("epochs:", len(res.History), "weights of epoch", res.WeightsEpoch, "on", res.Device)
	fmt.Println("block5 weights:", res.Weights.Tensors[models.Block5WeightName(1)].Shape)
	fmt.Println("validation images:", res.Validation.N)
	// Output:
	// epochs: 2 weights of epoch 2 on cpu
	// block5 weights: [32 32 3 3]
	// validation images: 10
}
