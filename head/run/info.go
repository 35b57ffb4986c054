package run

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// Run modes recorded in settings.json.
const (
	ModeHead     = "head"
	ModeFineTune = "finetune"
)

// Info is the part of settings.json that every run has, whatever its
// mode: where its features came from, so that export and evaluate can find
// the model and refuse data from another backbone.
type Info struct {
	Mode        string    `json:"mode"`         // ModeHead or ModeFineTune
	ModelDir    string    `json:"model_dir"`    // absolute path of the prepared model folder
	ModelSHA256 string    `json:"model_sha256"` // sha256 of its extractor.onnx
	Preset      string    `json:"preset,omitempty"`
	Classes     []string  `json:"classes"`
	TrainCache  CacheRef  `json:"train_cache"`
	ValCache    CacheRef  `json:"val_cache"`
	Created     time.Time `json:"created"`
	Backend     string    `json:"backend,omitempty"` // the matrix-product implementation (head mode)
	Seconds     float64   `json:"seconds,omitempty"` // wall time of the training
	// HoldoutN is the number of training rows held out to select on (the
	// settings' holdout fraction and seed carve them, head.CarveHoldout);
	// TrainCache.N − HoldoutN were trained on. 0 without a holdout.
	HoldoutN int `json:"holdout_n,omitempty"`
	// TTA records that validation and the holdout's selection averaged the
	// probabilities of each image's views (--tta); the weights themselves
	// take one view per image.
	TTA bool `json:"tta,omitempty"`
	// WeightsSHA256 is the hex sha256 of weights.safetensors, which
	// LoadWeights checks. Write fills it in; empty in runs written before
	// tlearn recorded it (their weights load unchecked: NoteUnchecked).
	WeightsSHA256 string `json:"weights_sha256,omitempty"`
}

// NoteUnchecked is the one-line note for a run whose settings.json records
// no sha256 of its weights (a run of an older tlearn), or "" when it does.
func (r *Info) NoteUnchecked(dir string) string {
	if r.WeightsSHA256 != "" {
		return ""
	}
	return fmt.Sprintf("note: %s was written by an older tlearn and records no sha256 of %s; its weights are loaded unchecked", dir, WeightsFile)
}

// CacheRef identifies a feature cache.
type CacheRef struct {
	Dir         string `json:"dir"`         // absolute path
	Fingerprint string `json:"fingerprint"` // the cache manifest's fingerprint
	N           int    `json:"n"`
}

// HeadSettings is settings.json of a head-mode run: the common part and
// every training setting (resolved), in one flat object.
type HeadSettings struct {
	Info
	head.Settings
}

// Check validates the fields that other commands rely on.
func (r *Info) Check() error {
	switch {
	case r.Mode != ModeHead && r.Mode != ModeFineTune:
		return fmt.Errorf("mode %q, want %q or %q", r.Mode, ModeHead, ModeFineTune)
	case r.ModelDir == "":
		return errors.New("no model_dir")
	case len(r.Classes) == 0:
		return errors.New("no classes")
	}
	return nil
}

// ReadInfo reads the common part of DIR/settings.json. Fields of other
// modes are ignored.
func ReadInfo(dir string) (*Info, error) {
	var info Info
	if err := readSettingsJSON(dir, &info); err != nil {
		return nil, err
	}
	if err := info.Check(); err != nil {
		return nil, fmt.Errorf("run: %s: %w", filepath.Join(dir, SettingsFile), err)
	}
	return &info, nil
}

// ReadHeadSettings reads DIR/settings.json of a head-mode run.
func ReadHeadSettings(dir string) (*HeadSettings, error) {
	var s HeadSettings
	if err := readSettingsJSON(dir, &s); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, SettingsFile)
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("run: %s: %w", p, err)
	}
	if s.Mode != ModeHead {
		return nil, fmt.Errorf("run: %s: a %s run, not a head run", p, s.Mode)
	}
	if err := s.Settings.Validate(); err != nil {
		return nil, fmt.Errorf("run: %s: %w", p, err)
	}
	return &s, nil
}

// ErrNotRun is wrapped by the errors of ReadInfo and ReadHeadSettings for
// a folder that exists but has no settings.json.
var ErrNotRun = errors.New("run: not a run directory")

func readSettingsJSON(dir string, v any) error {
	p := filepath.Join(dir, SettingsFile)
	b, err := fsutil.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(dir); serr != nil {
				return fmt.Errorf("run: run directory %s: %w", dir, serr)
			}
			return fmt.Errorf("%w: %w", ErrNotRun, err)
		}
		return fmt.Errorf("run: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("run: %s: %w", p, err)
	}
	return nil
}

// WriteJSON writes v as indented JSON to path, atomically.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("run: encode %s: %w", path, err)
	}
	return fsutil.WriteFile(path, append(b, '\n'), 0o644)
}
