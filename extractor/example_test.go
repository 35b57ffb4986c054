package extractor_test

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
)

func ExampleExtractor_Extract() {
	if _, err := ortlib.Init(""); err != nil { // once per process, in main
		fmt.Println(err)
		return
	}
	root, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(root)

	// A prepared model (here the tiny VGG the tests use) and two classes
	// of three images each.
	modelDir := filepath.Join(root, "model")
	if _, err := models.WriteTinyPrepared(modelDir, 1); err != nil {
		fmt.Println(err)
		return
	}
	for _, class := range []string{"cat", "dog"} {
		os.MkdirAll(filepath.Join(root, "data", class), 0o755)
		for i := range 3 {
			img := image.NewGray(image.Rect(0, 0, 40, 40))
			for p := range img.Pix {
				img.Pix[p] = uint8(p*(i+1) + len(class)*50)
			}
			f, _ := os.Create(filepath.Join(root, "data", class, fmt.Sprintf("%d.png", i)))
			png.Encode(f, img)
			f.Close()
		}
	}

	src, err := dataset.Open(filepath.Join(root, "data"), dataset.Settings{})
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := extractor.Open(modelDir, extractor.Options{Size: 32, Maps: true, ORT: ortlib.Options{Device: ortlib.DeviceCPU}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	res, err := e.Extract(context.Background(), src, nil, filepath.Join(root, "cache"), extractor.Settings{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("computed", res.Computed, "images")

	c, err := cache.Open(res.Dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println(c.Manifest.Classes, c.Labels, "features", c.Manifest.FeatureDim, "maps", c.Manifest.MapsShape)
	// Output:
	// computed 6 images
	// [cat dog] [0 0 0 1 1 1] features 32 maps [32 2 2]
}
