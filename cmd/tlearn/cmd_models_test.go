package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/models"
)

func modelsApp(stdout *bytes.Buffer) *cli.App { return appWith(stdout, nil, modelsCommand()) }

// TestModelsCommands runs synth, info and prepare the way the README does.
func TestModelsCommands(t *testing.T) {
	dir := t.TempDir()
	tiny := filepath.Join(dir, "tiny.onnx")
	keras := filepath.Join(dir, "tiny-keras.onnx")
	notONNX := filepath.Join(dir, "notes.onnx")
	if err := os.WriteFile(notONNX, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc    string
		args    []string
		want    []string // substrings of stdout
		wantErr string
		usage   bool
	}{
		{desc: "synth tiny", args: []string{"models", "synth", "vgg16", "--seed", "3", "--tiny", "--out", tiny, "-q"}},
		{desc: "synth tiny keras", args: []string{"models", "synth", "vgg16", "--seed", "3", "--tiny", "--keras", "--out", keras, "-q"}},
		{desc: "info", args: []string{"models", "info", tiny}, want: []string{"Conv 13", "MaxPool 5", "block5: 32 channels", "vgg16-torchvision", "[batch,3,height,width]"}},
		{desc: "info --json after the file", args: []string{"models", "info", keras, "--json"}, want: []string{`"preset": "vgg16-keras"`, `"layout": "NHWC"`, `"tlearn.synthetic": "{\"architecture\":\"vgg16\",\"style\":\"keras\"`}},
		{desc: "prepare with the detected preset", args: []string{"models", "prepare", "--onnx", keras, "--out", filepath.Join(dir, "model"), "-q", "--device", "cpu"}},
		{desc: "info on the prepared folder", args: []string{"models", "info", filepath.Join(dir, "model")}, want: []string{"prepared: preset vgg16-keras", "features: [N,32]"}},
		{desc: "wrong preset", args: []string{"models", "prepare", "--onnx", tiny, "--preset", models.PresetKeras, "--out", filepath.Join(dir, "bad"), "-q"}, wantErr: tiny},
		{desc: "wrong preset: the CLI advises", args: []string{"models", "prepare", "--onnx", tiny, "--preset", models.PresetKeras, "--out", filepath.Join(dir, "bad"), "-q"}, wantErr: "(leave out --preset to detect it from the graph)"},
		{desc: "unknown feature tensor: the CLI advises", args: []string{"models", "prepare", "--onnx", tiny, "--feature-tensor", "nope", "--out", filepath.Join(dir, "bad"), "-q"}, wantErr: "(see `tlearn models info --json`"},
		{desc: "not onnx", args: []string{"models", "info", notONNX}, wantErr: "not an ONNX model"},
		{desc: "synth unknown architecture", args: []string{"models", "synth", "resnet50", "--out", tiny}, wantErr: "resnet50"},
		{desc: "tiny and width", args: []string{"models", "synth", "vgg16", "--tiny", "--width", "2", "--out", tiny}, wantErr: "--width", usage: true},
		{desc: "preprocessing without a feature tensor", args: []string{"models", "prepare", "--onnx", tiny, "--preprocessing", "caffe", "--out", filepath.Join(dir, "x")}, wantErr: "--feature-tensor", usage: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var out bytes.Buffer
			err := modelsApp(&out).Run(append([]string{"tlearn"}, tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error()+out.String(), tc.wantErr) {
					t.Fatalf("err = %v (output %q), want one mentioning %q", err, out.String(), tc.wantErr)
				}
				var ue usageError
				if tc.usage != errors.As(err, &ue) {
					t.Fatalf("err = %v: usage error %v, want %v", err, !tc.usage, tc.usage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	var out bytes.Buffer
	if err := modelsApp(&out).Run([]string{"tlearn", "models", "info", "--json", filepath.Join(dir, "model")}); err != nil {
		t.Fatal(err)
	}
	var info models.Info
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	if info.Spec == nil || info.Spec.Maps == nil || info.Spec.Maps.Channels != 32 {
		t.Fatalf("info --json: %+v", info)
	}
}

func TestPrepareAdvice(t *testing.T) {
	for _, tc := range []struct {
		desc string
		err  error
		s    models.PrepareSettings
		want string
	}{
		{"not VGG", fmt.Errorf("%w: a branch", models.ErrNotVGG), models.PrepareSettings{}, "name the tensor to pool with --feature-tensor"},
		{"ambiguous preset", fmt.Errorf("%w: Keras names", models.ErrPreset), models.PrepareSettings{}, "choose with --preset vgg16-torchvision|vgg16-keras"},
		{"preset that does not fit", fmt.Errorf("%w: expects NHWC", models.ErrPreset), models.PrepareSettings{Preset: models.PresetKeras}, "leave out --preset"},
		{"preset with a feature tensor", fmt.Errorf("%w: a VGG16 preset", models.ErrPreset), models.PrepareSettings{Preset: models.PresetKeras, FeatureTensor: "x"}, "the preset is custom"},
		{"no such tensor", fmt.Errorf("%w \"x\"", models.ErrNoTensor), models.PrepareSettings{FeatureTensor: "x"}, "tlearn models info --json"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got := withPrepareAdvice(tc.err, tc.s)
			if !errors.Is(got, tc.err) || !strings.HasPrefix(got.Error(), tc.err.Error()+" (") || !strings.Contains(got.Error(), tc.want) {
				t.Errorf("got %v, want %v with advice %q", got, tc.err, tc.want)
			}
		})
	}
	other := errors.New("models: prepare x: permission denied")
	if got := withPrepareAdvice(other, models.PrepareSettings{}); got != other {
		t.Errorf("got %v, want the error unchanged", got)
	}
}
