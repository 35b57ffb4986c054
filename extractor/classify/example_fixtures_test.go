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

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

// mustExportDigits builds the classifier of ExampleClassifier_Classify
// into dir and returns its path: the repository's fixtures (testdata/v1)
// made into one ONNX file, the prepared model's backbone and the run's head,
// as `tlearn export` does.
func mustExportDigits(dir string) string {
	v1 := filepath.Join("..", "..", "testdata", "v1")
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
	m, err := classifier.Build(context.Background(), spec, backbone, cw, classifier.Settings{Classes: w.Classes, Size: 32})
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "digits.onnx")
	if err := models.Save(path, m); err != nil {
		log.Fatal(err)
	}
	return path
}

// mustWriteImages writes three images of different sizes (0.png, 1.png,
// 2.png: a white bar on black) into the new folder dir/images and returns
// it.
func mustWriteImages(dir string) string {
	images := filepath.Join(dir, "images")
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
	return images
}
