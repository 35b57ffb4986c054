package experiment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// caches are an opened training and validation feature cache.
type caches struct {
	train, val *cache.Cache
	// tta validates on the mean probabilities of the validation cache's
	// views (test-time augmentation) instead of its plain view 0.
	tta bool
}

func (c *caches) Close() error { return errors.Join(c.train.Close(), c.val.Close()) }

// data are the training rows with all their views (training draws one
// per epoch) and the validation rows: their plain view, or all views with
// tta.
func (c *caches) data() (train, val *head.Data) {
	return cacheData(c.train), evalData(c.val, c.tta)
}

func cacheData(c *cache.Cache) *head.Data {
	return &head.Data{X: c.Features, Y: c.Labels, Classes: c.Manifest.Classes, Views: c.Manifest.Views}
}

// evalMapsData is the maps that validation or evaluation reads from c:
// the mean of all views with tta, else view 0, the plain images.
func evalMapsData(c *cache.Cache, tta bool) *finetune.MapsData {
	d := mapsData(c)
	d.PlainView = !tta
	return d
}

// evalData is the data that validation or evaluation reads from c: all
// views with tta, else view 0, the plain images.
func evalData(c *cache.Cache, tta bool) *head.Data {
	d := cacheData(c)
	if tta {
		return d
	}
	return d.View(0)
}

// CacheDirs are the caches that Extract wrote into dir: dir itself, or the
// train/ and val/ caches of an extraction with a validation split (those of
// them that exist). A folder that holds neither is returned as it is, so
// that opening it says what is wrong.
func CacheDirs(dir string) []string {
	if _, err := os.Stat(filepath.Join(dir, cache.ManifestFile)); !errors.Is(err, os.ErrNotExist) {
		return []string{dir}
	}
	var pair []string
	for _, part := range []string{"train", "val"} {
		sub := filepath.Join(dir, part)
		if _, err := os.Stat(filepath.Join(sub, cache.ManifestFile)); err == nil {
			pair = append(pair, sub)
		}
	}
	if len(pair) == 0 {
		return []string{dir}
	}
	return pair
}

// openCaches opens the two caches and checks that they hold comparable
// features of the same classes. With valDir "", trainDir must hold the
// train/ and val/ caches that a split extraction writes.
func openCaches(trainDir, valDir string) (*caches, error) {
	if valDir == "" {
		pair := filepath.Join(trainDir, "train")
		if _, err := os.Stat(filepath.Join(pair, cache.ManifestFile)); err != nil {
			if le := fsutil.Writer(pair, trainDir); le != nil { // an extract rewriting them
				return nil, fmt.Errorf("experiment: %s cannot be read now: %w", trainDir, le)
			}
			return nil, fmt.Errorf("%w: %s has no train/ and val/ caches", ErrNoValCache, trainDir)
		}
		trainDir, valDir = pair, filepath.Join(trainDir, "val")
	}
	train, err := cache.OpenFeatures(trainDir)
	if err != nil {
		return nil, err
	}
	val, err := cache.OpenFeatures(valDir)
	if err != nil {
		return nil, errors.Join(err, train.Close())
	}
	c := &caches{train: train, val: val}
	tm, vm := train.Manifest, val.Manifest
	switch {
	case tm.BaseFingerprint() != vm.BaseFingerprint(): // views may differ: view 0 is the plain image of both
		err = fmt.Errorf("experiment: %s and %s were extracted differently (model %s vs %s, size %d vs %d, interpolation %s vs %s): their features are not comparable; extract both with the same model and settings",
			trainDir, valDir, shortSHA(tm.Model.ExtractorSHA256), shortSHA(vm.Model.ExtractorSHA256), tm.Size, vm.Size, tm.Interpolation, vm.Interpolation)
	case !slices.Equal(tm.Classes, vm.Classes):
		err = fmt.Errorf("experiment: %s has classes %v but %s has %v", trainDir, tm.Classes, valDir, vm.Classes)
	case tm.FeatureDim != vm.FeatureDim:
		err = fmt.Errorf("experiment: %s has %d features per image but %s has %d", trainDir, tm.FeatureDim, valDir, vm.FeatureDim)
	}
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// runInfo is the common part of a head run's settings.json: the model
// comes from the cache manifest, which recorded the prepared model's folder
// and the sha256 of its extractor.onnx.
func (c *caches) runInfo(res *head.Result) (rundir.Info, error) {
	tr, err := cacheRef(c.train)
	if err != nil {
		return rundir.Info{}, err
	}
	va, err := cacheRef(c.val)
	if err != nil {
		return rundir.Info{}, err
	}
	m := c.train.Manifest
	return rundir.Info{
		Mode: rundir.ModeHead, ModelDir: m.Model.Dir, ModelSHA256: m.Model.ExtractorSHA256, Preset: m.Model.Preset,
		Classes: m.Classes, TrainCache: tr, ValCache: va, Created: now(),
		Backend: res.Backend, Seconds: res.Seconds, TTA: c.tta,
	}, nil
}

func cacheRef(c *cache.Cache) (rundir.CacheRef, error) {
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return rundir.CacheRef{}, fmt.Errorf("experiment: %w", err)
	}
	return rundir.CacheRef{Dir: dir, Fingerprint: c.Manifest.Fingerprint, N: c.Len()}, nil
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
