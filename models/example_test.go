package models_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/models"
)

// A synthetic VGG16 in torch.onnx's layout, cut into a prepared model.
func ExamplePrepare() {
	tmp, err := os.MkdirTemp("", "tlearn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "vgg16.onnx")
	if err := models.Save(src, models.TinyVGG(1)); err != nil {
		log.Fatal(err)
	}
	// SkipCheck: the example runs without ONNX Runtime.
	spec, err := models.Prepare(context.Background(), src, models.PrepareSettings{SkipCheck: true}, filepath.Join(tmp, "model"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("preset:", spec.Preset, spec.Preprocessing.Layout)
	fmt.Printf("features: [N,%d] from %s\n", spec.Features.Dim, spec.Features.Tensor)
	fmt.Printf("maps: [N,%d,H/%d,W/%d] from %s\n", spec.Maps.Channels, spec.Maps.Stride, spec.Maps.Stride, spec.Maps.Tensor)
	fmt.Println("block5 weights:", spec.Block5.ConvWeights)
	// Output:
	// preset: vgg16-torchvision NCHW
	// features: [N,32] from block5_pool
	// maps: [N,32,H/16,W/16] from /23/MaxPool_output_0
	// block5 weights: [24.weight block5_conv2.weight 28.weight]
}

// The blocks of a synthetic Keras-style VGG16, found by walking the graph.
func ExampleSynthVGG16() {
	m := models.SynthVGG16(models.SynthSettings{Seed: 1, Keras: true})
	info := models.Inspect(m)
	fmt.Println(info.Preset, info.VGG.Layout, info.Parameters)
	for i, b := range info.VGG.Blocks {
		fmt.Println(i+1, b.Channels, len(b.Convs))
	}
	// Output:
	// vgg16-keras NHWC 14714688
	// 1 64 2
	// 2 128 2
	// 3 256 3
	// 4 512 3
	// 5 512 3
}
