package run_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head/run"
)

// Write the run folder of a head trained on the features of two caches, as
// `tlearn train` does, and read it back. The caches are the repository's
// fixtures (testdata/v1): ten MNIST digits each, with 32 features per image
// from a tiny synthetic VGG16.
func ExampleWrite() {
	// Open the caches and train the head (example_fixtures_test.go).
	train, val := mustOpenCaches()
	defer train.Close()
	defer val.Close()
	res, rep := mustTrainHead(train, val)

	tmp, err := os.MkdirTemp("", "run-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "run-head")
	// settings.json records where the features came from, so that evaluate
	// and export find the model and refuse another backbone's features.
	ref := func(c *cache.Cache) run.CacheRef {
		return run.CacheRef{Dir: c.Dir, Fingerprint: c.Manifest.Fingerprint, N: c.Len()}
	}
	m := train.Manifest.Model
	info := run.Info{
		Mode: run.ModeHead, ModelDir: m.Dir, ModelSHA256: m.ExtractorSHA256, Preset: m.Preset,
		Classes: train.Manifest.Classes, TrainCache: ref(train), ValCache: ref(val),
		Created: time.Now().UTC(), Backend: res.Backend, Seconds: res.Seconds,
	}
	err = run.Write(dir, &run.Contents{
		Settings: run.HeadSettings{Info: info, Settings: res.Settings},
		Weights:  res.Weights,
		History:  res.History,
		Metrics:  run.NewMetrics(res.History, res.WeightsEpoch, res.Seconds, res.EarlyStopped, rep),
		Title:    "example",
	})
	if err != nil {
		log.Fatal(err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	s, err := run.ReadHeadSettings(dir)
	if err != nil {
		log.Fatal(err)
	}
	h, err := run.ReadHistory(filepath.Join(dir, run.HistoryFile))
	if err != nil {
		log.Fatal(err)
	}
	w, err := run.LoadWeights(filepath.Join(dir, run.WeightsFile))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s run, hidden %d, %d epochs (the last is %d)\n", s.Mode, s.Hidden, len(h), h[len(h)-1].Epoch)
	fmt.Printf("weights: %d features in, %d classes out\n", w.InputDim(), w.NumClasses())
	// Output:
	// confusion.png
	// curves.png
	// history.csv
	// metrics.json
	// settings.json
	// weights.safetensors
	// head run, hidden 64, 3 epochs (the last is 3)
	// weights: 32 features in, 10 classes out
}
