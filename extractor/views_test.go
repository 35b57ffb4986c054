package extractor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/extractor/internal/extractortest"
	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models"
)

// viewSettings are three views of flipped, cropped and jittered images.
func viewSettings(t *testing.T) Settings {
	t.Helper()
	aug, err := dataset.ParseAugment("flip,crop=0.4,jitter")
	if err != nil {
		t.Fatal(err)
	}
	return Settings{Views: 3, Augment: aug, AugmentSeed: 7}
}

// TestViewsMatchDirectRun checks every view of every image against an
// independent ORT session fed that view alone (dataset.Augment.Draw and
// ApplyView on the decoded image), view 0 against a plain extraction, and
// that the cache does not depend on the number of decode workers. Batches
// of 4 with 3 views per image cut rows in two, which the writer must join.
func TestViewsMatchDirectRun(t *testing.T) {
	t.Parallel()
	modelDir := extractortest.TinyModel(t)
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	data := extractortest.MakeDataset(t, []string{"ant", "bee"}, 5)
	e := openExtractor(t, Options{Batch: 4, Maps: true})
	s := viewSettings(t)
	dir := filepath.Join(t.TempDir(), "views")
	s.Workers = 1
	res, err := extract(t, e, data, dir, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.N != 10 || res.Computed != 30 {
		t.Fatalf("result %+v, want 10 rows from 30 backbone runs", res)
	}
	s.Workers = 3
	dir3 := filepath.Join(t.TempDir(), "views3")
	if _, err := extract(t, e, data, dir3, s); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dir, dir3, cache.FeaturesFile, cache.LabelsFile, cache.MapsFile)
	plainDir := filepath.Join(t.TempDir(), "plain")
	if _, err := extract(t, e, data, plainDir, Settings{}); err != nil {
		t.Fatal(err)
	}

	c, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	plain, err := cache.Open(plainDir)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	m := c.Manifest
	if m.Views != 3 || m.Augment == nil || m.Augment.Spec != "flip,crop=0.4,jitter=0.2" || m.Augment.Seed != 7 {
		t.Fatalf("manifest views %d, augment %+v", m.Views, m.Augment)
	}
	if m.BaseFingerprint() != plain.Manifest.Fingerprint || m.Fingerprint == plain.Manifest.Fingerprint {
		t.Errorf("fingerprints: views %s (base %s), plain %s", m.Fingerprint, m.BaseFingerprint(), plain.Manifest.Fingerprint)
	}

	in, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, 3, extractortest.Size, extractortest.Size))
	feat, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, int64(spec.Features.Dim)))
	defer in.Destroy()
	defer feat.Destroy()
	sess, err := ort.NewAdvancedSession(filepath.Join(modelDir, models.ExtractorFile), []string{spec.Input},
		[]string{models.FeaturesOutput}, []ort.Value{in}, []ort.Value{feat}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Destroy()
	src := openSource(t, data)
	var scratch []uint8
	changed := 0
	for i, it := range src.Items {
		img, err := src.Decode(i)
		if err != nil {
			t.Fatal(err)
		}
		for v := range 3 {
			vw := s.Augment.Draw(7, it.Path, v, img.Bounds())
			dataset.Preprocess(in.GetData(), 0, dataset.ApplyView(img, vw, extractortest.Size, dataset.Nearest, &scratch), spec.Preprocessing)
			if err := sess.Run(); err != nil {
				t.Fatal(err)
			}
			for j, want := range feat.GetData() {
				if got := c.FeatureView(i, v)[j]; !tol.Close(float64(got), float64(want), 1e-5, 1e-5) {
					t.Fatalf("%s view %d: feature %d = %g, direct run %g", it.Path, v, j, got, want)
				}
			}
		}
		for j, want := range plain.Feature(i) {
			if got := c.FeatureView(i, 0)[j]; !tol.Close(float64(got), float64(want), 1e-6, 1e-6) {
				t.Fatalf("%s: view 0 feature %d = %g, plain cache %g", it.Path, j, got, want)
			}
		}
		if c.FeatureView(i, 1)[0] != c.FeatureView(i, 0)[0] {
			changed++
		}
	}
	if changed == 0 {
		t.Error("no view 1 differs from its plain image")
	}
}

// TestViewsResumeAfterCancel cancels an extraction with views inside a
// chunk, resumes it, and compares with an uninterrupted run, byte for byte.
func TestViewsResumeAfterCancel(t *testing.T) {
	t.Parallel()
	data := extractortest.MakeDataset(t, []string{"a", "b"}, 10) // 20 images, batch 3: chunks of 12
	e := openExtractor(t, Options{Batch: 3, Maps: true})
	s := viewSettings(t)
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := extract(t, e, data, ref, s); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{cancelAt: 40, onCancel: cancel}
	e.prog = rec
	if _, err := e.Extract(ctx, openSource(t, data), nil, dir, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Extract returned %v", err)
	}
	m, err := cache.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.DoneRows() == 0 || m.Complete() {
		t.Fatalf("%d rows done after cancelling at view 40", m.DoneRows())
	}
	if want := "extract 0/60"; len(rec.phases) == 0 || !strings.HasSuffix(rec.phases[len(rec.phases)-1], want) {
		t.Errorf("phases %q, want progress over images×views (%s)", rec.phases, want)
	}
	e.prog = &recorder{}
	res, err := extract(t, e, data, dir, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reused != m.DoneRows() || res.Computed != 3*(20-m.DoneRows()) {
		t.Errorf("resume: %+v after %d rows", res, m.DoneRows())
	}
	sameFiles(t, ref, dir, cache.FeaturesFile, cache.LabelsFile, cache.MapsFile)
}

// One view is the plain cache exactly: the same array bytes and a
// manifest without views, whose fingerprint is the plain one.
func TestOneViewIsPlain(t *testing.T) {
	t.Parallel()
	data := extractortest.MakeDataset(t, []string{"a", "b"}, 3)
	e := openExtractor(t, Options{Batch: 4, Maps: true})
	plain, one := filepath.Join(t.TempDir(), "plain"), filepath.Join(t.TempDir(), "one")
	if _, err := extract(t, e, data, plain, Settings{}); err != nil {
		t.Fatal(err)
	}
	if _, err := extract(t, e, data, one, Settings{Views: 1}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, plain, one, cache.FeaturesFile, cache.LabelsFile, cache.MapsFile)
	b, err := os.ReadFile(filepath.Join(one, cache.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"views"`) || strings.Contains(string(b), `"augment"`) {
		t.Errorf("a one-view manifest mentions views:\n%s", b)
	}
	m1, _ := cache.ReadManifest(plain)
	m2, _ := cache.ReadManifest(one)
	if m1.Fingerprint != m2.Fingerprint {
		t.Errorf("fingerprints %s and %s", m1.Fingerprint, m2.Fingerprint)
	}
}

func TestViewsSettingsAndMismatch(t *testing.T) {
	t.Parallel()
	data := extractortest.MakeDataset(t, []string{"a", "b"}, 3)
	e := openExtractor(t, Options{Batch: 4})
	flip := dataset.Augment{Flip: true}
	for _, tc := range []struct {
		desc string
		s    Settings
		want string
	}{
		{"negative", Settings{Views: -1, Augment: flip}, "-1 views per image, want 1..64"},
		{"too many", Settings{Views: 65, Augment: flip}, "65 views per image, want 1..64"},
		{"views without augmentation", Settings{Views: 3}, "3 views per image need an augmentation"},
		{"augmentation without views", Settings{Augment: flip}, "augmentation flip with one view per image"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := extract(t, e, data, filepath.Join(t.TempDir(), "c"), tc.s)
			if !errors.Is(err, ErrViews) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an ErrViews about %q", err, tc.want)
			}
		})
	}
	dir := filepath.Join(t.TempDir(), "cache")
	if _, err := extract(t, e, data, dir, Settings{Views: 2, Augment: flip, AugmentSeed: 1}); err != nil {
		t.Fatal(err)
	}
	if res, err := extract(t, e, data, dir, Settings{Views: 2, Augment: flip, AugmentSeed: 1}); err != nil || !res.UpToDate {
		t.Fatalf("same views again: %+v, %v", res, err)
	}
	for _, tc := range []struct {
		desc string
		s    Settings
		want string
	}{
		{"plain", Settings{}, "2 views (flip, seed 1) (now 1 view (plain))"},
		{"more views", Settings{Views: 3, Augment: flip, AugmentSeed: 1}, "(now 3 views (flip, seed 1))"},
		{"other augmentation", Settings{Views: 2, Augment: dataset.Augment{Crop: 0.5}, AugmentSeed: 1}, "(now 2 views (crop=0.5, seed 1))"},
		{"other seed", Settings{Views: 2, Augment: flip, AugmentSeed: 2}, "(now 2 views (flip, seed 2))"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := extract(t, e, data, dir, tc.s)
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a mismatch about %q", err, tc.want)
			}
		})
	}
}
