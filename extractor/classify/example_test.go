package classify_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/classify"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

// Export a trained run as one ONNX classifier and label a folder of images
// with it. The prepared model and the run are the repository's fixtures
// (testdata/v1): a tiny synthetic VGG16 and a head trained for three epochs
// on ten MNIST digits, which still calls every image a 9.
func ExampleClassifier_Classify() {
	if _, err := ortlib.Init(""); err != nil { // once per process, in main
		log.Fatal(err)
	}
	v1 := filepath.Join("..", "..", "testdata", "v1")
	tmp, err := os.MkdirTemp("", "classify-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	// The classifier: the prepared model's backbone and the run's head
	// (what `tlearn export` does).
	modelDir := filepath.Join(v1, "model")
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		log.Fatal(err)
	}
	backbone, err := models.Load(filepath.Join(modelDir, models.ExtractorFile))
	if err != nil {
		log.Fatal(err)
	}
	w, err := run.LoadWeights(filepath.Join(v1, "run-head", run.WeightsFile))
	if err != nil {
		log.Fatal(err)
	}
	dense := func(k, b head.Tensor) *classifier.Dense {
		return &classifier.Dense{In: k.Shape[0], Out: k.Shape[1], Kernel: k.Data, Bias: b.Data}
	}
	cw := classifier.Weights{Output: *dense(w.Output())}
	if k, b, ok := w.Hidden(); ok {
		cw.Hidden = dense(k, b)
	}
	m, err := classifier.Build(spec, backbone, cw, classifier.Settings{Classes: w.Classes, Size: 32})
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(tmp, "digits.onnx")
	if err := models.Save(path, m); err != nil {
		log.Fatal(err)
	}

	// Three images to label, of any size: the classifier resizes them.
	images := filepath.Join(tmp, "images")
	if err := os.Mkdir(images, 0o755); err != nil {
		log.Fatal(err)
	}
	for i := range 3 {
		img := image.NewGray(image.Rect(0, 0, 28+8*i, 28))
		for x := 10; x < 18; x++ {
			for y := 4; y < 24; y++ {
				img.SetGray(x+4*i, y, color.Gray{Y: 255})
			}
		}
		f, err := os.Create(filepath.Join(images, fmt.Sprintf("%d.png", i)))
		if err != nil {
			log.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}

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
