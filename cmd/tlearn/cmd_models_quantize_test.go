package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/models"
)

// keptQuantize is what an interrupted models quantize says it kept.
const keptQuantize = "the model folder was not written; the same command quantizes it again from the start"

// quantizeArgs is `models quantize` of the export fixture's model,
// calibrated on its images, into out.
func quantizeArgs(f *exportFixture, out string) []string {
	return []string{"models", "quantize", "--model", f.model, "--calibrate", f.data, "--out", out,
		"--size", exportSize, "--calibrate-images", "8", "--seed", "2", "--threads", "1"}
}

// quantizeFaultCase is the seeded-SIGKILL check of models quantize
// (TestFaultsKillAndRerun).
func quantizeFaultCase(f *exportFixture) faultCase {
	return faultCase{desc: "models quantize", args: quantizeArgs(f, "{out}")}
}

// TestModelsQuantize: the int8 folder is a prepared model that extract
// takes; its cache has another fingerprint than float32's and cache info
// says int8; a second run keeps the folder and names --force.
func TestModelsQuantize(t *testing.T) {
	f := newExportFixture(t, 0)
	root := t.TempDir()
	out := filepath.Join(root, "model8")
	code, _, errs := runTlearn(t, quantizeArgs(f, out)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, "calibrated on 8 images") {
		t.Errorf("stderr does not say what it calibrated on:\n%s", errs)
	}
	spec, err := models.ReadSpec(out)
	if err != nil || !spec.Int8() {
		t.Fatalf("spec %+v, %v", spec, err)
	}
	c8 := filepath.Join(root, "cache8")
	extractCache(t, out, f.data, c8)
	m8, err := cache.ReadManifest(c8)
	if err != nil {
		t.Fatal(err)
	}
	m32, err := cache.ReadManifest(f.cache)
	if err != nil {
		t.Fatal(err)
	}
	if m8.Fingerprint == m32.Fingerprint || m8.Model.Quantization != models.SchemeInt8QDQ || m32.Model.Quantization != "" {
		t.Errorf("int8 cache: fingerprint %s, model %+v; float32: %s, %+v", m8.Fingerprint, m8.Model, m32.Fingerprint, m32.Model)
	}
	code, info, errs := runTlearn(t, "cache", "info", c8)
	if code != 0 || !strings.Contains(info, "int8 ("+models.SchemeInt8QDQ+")") {
		t.Errorf("cache info: exit %d, does not say int8:\n%s%s", code, info, errs)
	}
	if _, info, _ := runTlearn(t, "cache", "info", f.cache); !strings.Contains(info, "float32") {
		t.Errorf("cache info of the float32 cache does not say float32:\n%s", info)
	}

	// Fine-tuning on int8 maps works, and says what was measured of it.
	maps8 := filepath.Join(root, "maps8")
	if code, _, errs := runTlearn(t, "extract", "--model", out, "--data", f.data, "--cache", maps8, "--val", "0.34", "--size", exportSize,
		"--maps", "--threads", "1"); code != 0 {
		t.Fatalf("extract --maps: exit %d\n%s", code, errs)
	}
	code, _, errs = runTlearn(t, "finetune", "--model", out, "--train", filepath.Join(maps8, "train"), "--val", filepath.Join(maps8, "val"),
		"--out", filepath.Join(root, "ft8"), "--hidden", "4", "--epochs", "1", "--batch", "2", "--threads", "1")
	if code != 0 || !strings.Contains(errs, "is an int8 model, so these maps are int8") {
		t.Errorf("finetune on int8 maps: exit %d, no note:\n%s", code, errs)
	}

	before, err := os.ReadFile(filepath.Join(out, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs = runTlearn(t, quantizeArgs(f, out)...)
	if code != 2 || !strings.Contains(errs, "--force") {
		t.Errorf("second run: exit %d, want 2 naming --force:\n%s", code, errs)
	}
	if after, _ := os.ReadFile(filepath.Join(out, "spec.json")); string(after) != string(before) {
		t.Error("the second run changed the folder")
	}
	code, _, errs = runTlearn(t, "models", "quantize", "--model", out, "--calibrate", f.data, "--out", filepath.Join(root, "again"), "--size", exportSize)
	if code != 1 || !strings.Contains(errs, "quantized already") {
		t.Errorf("quantizing the int8 model: exit %d\n%s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(root, "again")); !os.IsNotExist(err) {
		t.Errorf("the refused run wrote its output: %v", err)
	}
}

// TestInt8Expectation: doctor's line follows the CPU's int8 instructions.
func TestInt8Expectation(t *testing.T) {
	for _, tc := range []struct {
		desc                      string
		avx512vnni, avxvnni, avx2 bool
		arch, says                string
	}{
		{"zen 5", true, true, true, "amd64", "AVX-512 VNNI: expect about 3"},
		{"alder lake", false, true, true, "amd64", "AVX-VNNI"},
		{"haswell", false, false, true, "amd64", "no VNNI (AVX2 only)"},
		{"graviton", false, false, false, "arm64", "arm64"},
		{"old", false, false, false, "amd64", "no int8 dot-product"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := int8Expectation(tc.avx512vnni, tc.avxvnni, tc.avx2, tc.arch); !strings.Contains(got, tc.says) {
				t.Errorf("%q does not say %q", got, tc.says)
			}
		})
	}
}
