package classifier_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

// A classifier made of a prepared tiny VGG16 and a softmax-regression head
// (all-zero weights here; a trained run's in practice).
func ExampleBuild() {
	dir, err := os.MkdirTemp("", "tlearn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	spec, err := models.WriteTinyPrepared(dir, 1)
	if err != nil {
		log.Fatal(err)
	}
	ext, err := models.Load(filepath.Join(dir, models.ExtractorFile))
	if err != nil {
		log.Fatal(err)
	}
	d, k := spec.Features.Dim, 2
	w := classifier.Weights{Output: classifier.Dense{In: d, Out: k, Kernel: make([]float32, d*k), Bias: make([]float32, k)}}
	// SkipCheck: the example runs without ONNX Runtime.
	m, err := classifier.Build(context.Background(), spec, ext, w, classifier.Settings{Classes: []string{"cat", "dog"}, Size: 64, SkipCheck: true})
	if err != nil {
		log.Fatal(err)
	}
	info, err := classifier.ReadInfo(m)
	if err != nil {
		log.Fatal(err)
	}
	in, out := info.Summary()
	fmt.Println(in)
	fmt.Println(out)
	fmt.Println("mode:", info.Mode)
	// Output:
	// pixels uint8 [N,H,W,3] RGB 0..255, resized to 64×64 (nearest) before the model
	// probabilities float32 [N,2]: cat, dog
	// mode: head
}
