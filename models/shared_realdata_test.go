//go:build realdata

// Tests on the real models of the shared folder ($TLEARN_SHARED, else
// ../shared next to the checkout); `make bench` runs them with -tags
// realdata, and they fail when a model is missing.

package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/realdata"
	"github.com/tlearn/tlearn/internal/testutil/tol"
)

// TestRoundTripShared reads and writes the real int8 MobileNetV2 of the
// shared folder byte for byte.
func TestRoundTripShared(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(realdata.Path(t, "models", "mobilenetv2-12-int8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, b)
}

// TestMobileNetFeatureTensor prepares the real int8 MobileNetV2 of
// shared folder at its tensor 627, which has no shape information.
func TestMobileNetFeatureTensor(t *testing.T) {
	t.Parallel()
	path := realdata.Path(t, "models", "mobilenetv2-12-int8.onnx")
	ortlibtest.Init(t)
	dir := t.TempDir()
	if _, err := Prepare(context.Background(), path, PrepareSettings{SkipCheck: true}, dir); !errors.Is(err, ErrNotVGG) || !strings.Contains(err.Error(), path) {
		t.Fatalf("without --feature-tensor: err = %v, want ErrNotVGG naming the file", err)
	}
	spec, err := Prepare(context.Background(), path, PrepareSettings{FeatureTensor: "627"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Features.Dim != 1280 || spec.Input != "input" || spec.Preprocessing != dataset.TorchvisionPreprocessing {
		t.Fatalf("spec %+v", spec)
	}
	ext, err := Load(filepath.Join(dir, ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	got := runWith(t, ext, "input", []int64{2, 3, 224, 224}, FeaturesOutput)[0]
	if !slices.Equal(got.Shape, []int64{2, 1280}) {
		t.Fatalf("features shape %v, want [2,1280]", got.Shape)
	}
}

// TestSharedVGG16 prepares the real torchvision VGG16 of the shared folder and
// compares the extractor with the uncut model at 32x32.
func TestSharedVGG16(t *testing.T) {
	t.Parallel()
	path := realdata.Path(t, "models", "vgg16-cifar5.onnx")
	ortlibtest.Init(t)
	dir := t.TempDir()
	spec, err := Prepare(context.Background(), path, PrepareSettings{DefaultSize: 32}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Preset != PresetTorchvision || spec.DefaultSize != 32 || spec.Features.Dim != 512 || spec.Maps.Channels != 512 {
		t.Fatalf("spec %+v", spec)
	}
	src, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := Load(filepath.Join(dir, ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	shape := []int64{2, 3, 32, 32}
	want := runWith(t, src, spec.Input, shape, spec.Features.Tensor, spec.Maps.Tensor)
	got := runWith(t, ext, spec.Input, shape, FeaturesOutput, MapsOutput)
	if err := tol.Floats(got[0].Data, gap(want[0]), 1e-5, 1e-5); err != nil {
		t.Fatalf("features: %v", err)
	}
	if err := tol.Floats(got[1].Data, want[1].Data, 1e-5, 1e-5); err != nil {
		t.Fatalf("maps: %v", err)
	}
}
