package classify_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/classify"
	"github.com/tlearn/tlearn/internal/ortlib"
)

// Label a folder of images with an exported classifier. The classifier is
// the repository's fixtures (testdata/v1) exported as `tlearn export`
// does: a tiny synthetic VGG16 and a head trained for three epochs on ten
// MNIST digits, which still calls every image a 9.
func ExampleClassifier_Classify() {
	if _, err := ortlib.Init(""); err != nil { // once per process, in main
		log.Fatal(err)
	}
	tmp, err := os.MkdirTemp("", "classify-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	// The exported classifier, and three images to label, of any size: the
	// classifier resizes them (example_fixtures_test.go).
	path := mustExportDigits(tmp)
	images := mustWriteImages(tmp)

	c, err := classify.Open(path, classify.Options{ORT: ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	src, err := dataset.OpenFiles([]string{images}, dataset.Settings{})
	if err != nil {
		log.Fatal(err)
	}
	// Predictions come in the order of src.Items.
	err = c.Classify(context.Background(), src, func(p classify.Prediction) error {
		if p.Err != nil {
			return p.Err
		}
		k := classify.TopK(nil, p.Probs, 1)[0]
		fmt.Printf("%s %s %.2f\n", filepath.Base(src.Items[p.Index].Path), c.Classes()[k], p.Probs[k])
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 0.png 9 0.25
	// 1.png 9 0.23
	// 2.png 9 0.24
}
