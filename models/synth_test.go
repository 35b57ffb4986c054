package models

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/dataset"
)

// TestSynthSaysTlearnMadeIt checks that a synthetic model records in its
// metadata that tlearn made it, and how, while its graph keeps mimicking
// the exporter's producer; and that the record survives prepare.
func TestSynthSaysTlearnMadeIt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s        SynthSettings
		producer string
		want     synthMeta
	}{
		{SynthSettings{Seed: 3, Width: tinyWidth}, "pytorch",
			synthMeta{Architecture: "vgg16", Style: "torchvision", Layout: dataset.NCHW, Seed: 3, Width: tinyWidth, Size: 224}},
		{SynthSettings{Seed: 4, Width: tinyWidth, Keras: true, Classifier: true, Size: 32}, "tf2onnx",
			synthMeta{Architecture: "vgg16", Style: "keras", Layout: dataset.NHWC, Seed: 4, Width: tinyWidth, Size: 32, Classifier: true}},
		{SynthSettings{Seed: 5, Width: tinyWidth, Zoo: true, Size: 64}, "MXNet",
			synthMeta{Architecture: "vgg16", Style: "zoo", Layout: dataset.NCHW, Seed: 5, Width: tinyWidth, Size: 64}},
	} {
		t.Run(tc.want.Style, func(t *testing.T) {
			m := SynthVGG16(tc.s)
			if m.GetProducerName() != tc.producer {
				t.Errorf("producer %q, want the exporter's %q", m.GetProducerName(), tc.producer)
			}
			got, ok := Inspect(m).Metadata[MetaSynthetic]
			if !ok {
				t.Fatalf("no %s in metadata_props %v", MetaSynthetic, m.MetadataProps)
			}
			var meta synthMeta
			if err := json.Unmarshal([]byte(got), &meta); err != nil || meta != tc.want {
				t.Fatalf("%s = %s (%v), want %+v", MetaSynthetic, got, err, tc.want)
			}
			var text strings.Builder
			if err := Inspect(m).WriteText(&text); err != nil || !strings.Contains(text.String(), "made by tlearn models synth") {
				t.Errorf("models info does not say tlearn made it (%v):\n%s", err, text.String())
			}
			if tc.s.Zoo {
				return // prepare copies every style's metadata alike
			}
			dir := t.TempDir()
			if _, err := WriteSynthPrepared(dir, tc.s); err != nil {
				t.Fatal(err)
			}
			ext, err := Load(filepath.Join(dir, ExtractorFile))
			if err != nil {
				t.Fatal(err)
			}
			if Inspect(ext).Metadata[MetaSynthetic] != got {
				t.Errorf("the prepared extractor lost %s", MetaSynthetic)
			}
		})
	}
}
