package dataset_test

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/dataset"
)

// writeExampleImages makes a tiny class-folder dataset: 3 cats, 3 dogs.
func writeExampleImages() string {
	dir, err := os.MkdirTemp("", "dataset-example")
	if err != nil {
		log.Fatal(err)
	}
	for c, class := range []string{"dog", "cat"} {
		os.Mkdir(filepath.Join(dir, class), 0o755)
		for i := range 3 {
			img := image.NewGray(image.Rect(0, 0, 32, 24))
			for p := range img.Pix {
				img.Pix[p] = uint8(100*c + 10*i)
			}
			f, err := os.Create(filepath.Join(dir, class, fmt.Sprintf("%d.png", i)))
			if err != nil {
				log.Fatal(err)
			}
			png.Encode(f, img)
			f.Close()
		}
	}
	return dir
}

// Stream a class-folder dataset in preprocessed batches, as the feature
// extractor does: split it, then fill one input tensor batch after batch.
func ExampleLoader() {
	dir := writeExampleImages()
	defer os.RemoveAll(dir)

	src, err := dataset.Open(dir, dataset.Settings{})
	if err != nil {
		log.Fatal(err)
	}
	train, val, err := dataset.Split(src, 0.34, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("classes:", src.Classes, "train:", len(train), "val:", len(val))

	l, err := dataset.NewLoader(src, train, dataset.LoaderSettings{
		Size:          16,
		Batch:         3,
		Preprocessing: dataset.CaffePreprocessing,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	input := make([]float32, l.BatchLen()) // e.g. the data of the ORT input tensor
	for {
		b, err := l.Next(context.Background(), input)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		// CaffePreprocessing: NHWC, BGR, minus the ImageNet mean; the first
		// value is the blue channel of the first pixel.
		fmt.Printf("batch at %d: %d images, labels %v, first value %.3f\n", b.Start, b.Count, b.Labels, input[0])
	}
	// Output:
	// classes: [cat dog] train: 4 val: 2
	// batch at 0: 3 images, labels [0 0 1], first value -3.939
	// batch at 3: 1 images, labels [1], first value -83.939
}
