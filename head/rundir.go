package head

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// File names inside a run directory (DESIGN.md, "Files on disk").
const (
	SettingsFile  = "settings.json"
	MetricsFile   = "metrics.json"
	CurvesFile    = "curves.png"
	ConfusionFile = "confusion.png"
)

// Run modes recorded in settings.json.
const (
	ModeHead     = "head"
	ModeFineTune = "finetune"
)

// RunInfo is the part of settings.json that every run has, whatever its
// mode: where its features came from, so that export and evaluate can find
// the model and refuse data from another backbone.
type RunInfo struct {
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
}

// CacheRef identifies a feature cache.
type CacheRef struct {
	Dir         string `json:"dir"`         // absolute path
	Fingerprint string `json:"fingerprint"` // the cache manifest's fingerprint
	N           int    `json:"n"`
}

// HeadRunSettings is settings.json of a head-mode run: the common part and
// every training setting (resolved), in one flat object.
type HeadRunSettings struct {
	RunInfo
	Settings
}

// Check validates the fields that other commands rely on.
func (r *RunInfo) Check() error {
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

// ReadRunInfo reads the common part of DIR/settings.json. Fields of other
// modes are ignored.
func ReadRunInfo(dir string) (*RunInfo, error) {
	var info RunInfo
	if err := readRunJSON(dir, &info); err != nil {
		return nil, err
	}
	if err := info.Check(); err != nil {
		return nil, fmt.Errorf("head: %s: %w", filepath.Join(dir, SettingsFile), err)
	}
	return &info, nil
}

// ReadHeadRunSettings reads DIR/settings.json of a head-mode run.
func ReadHeadRunSettings(dir string) (*HeadRunSettings, error) {
	var s HeadRunSettings
	if err := readRunJSON(dir, &s); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, SettingsFile)
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("head: %s: %w", p, err)
	}
	if s.Mode != ModeHead {
		return nil, fmt.Errorf("head: %s: a %s run, not a head run", p, s.Mode)
	}
	if err := s.Settings.Validate(); err != nil {
		return nil, fmt.Errorf("head: %s: %w", p, err)
	}
	return &s, nil
}

func readRunJSON(dir string, v any) error {
	p := filepath.Join(dir, SettingsFile)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(dir); serr != nil {
				return fmt.Errorf("head: run directory %s: %w", dir, serr)
			}
			return fmt.Errorf("head: %s: %w (not a run directory; make one with `tlearn train`)", p, err)
		}
		return fmt.Errorf("head: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("head: %s: %w", p, err)
	}
	return nil
}

// Metrics is metrics.json: the last and the best epoch (by validation
// accuracy), and an evaluation of the saved weights on the validation set.
type Metrics struct {
	Final        Epoch   `json:"final"`
	Best         Epoch   `json:"best"`
	EpochsRun    int     `json:"epochs_run"`
	Seconds      float64 `json:"seconds"`
	WeightsEpoch int     `json:"weights_epoch"` // the epoch whose weights were saved
	EarlyStopped bool    `json:"early_stopped"`
	Validation   *Report `json:"validation,omitempty"`
}

// NewMetrics summarises a history. It panics on an empty history.
func NewMetrics(h History, weightsEpoch int, seconds float64, earlyStopped bool, validation *Report) *Metrics {
	return &Metrics{
		Final: h[len(h)-1], Best: h[h.Best()], EpochsRun: len(h), Seconds: seconds,
		WeightsEpoch: weightsEpoch, EarlyStopped: earlyStopped, Validation: validation,
	}
}

// Metrics summarises a training result; validation is the evaluation of its
// weights on the validation set (may be nil).
func (r *Result) Metrics(validation *Report) *Metrics {
	return NewMetrics(r.History, r.WeightsEpoch, r.Seconds, r.EarlyStopped, validation)
}

// ReadMetrics reads DIR/metrics.json.
func ReadMetrics(dir string) (*Metrics, error) {
	p := filepath.Join(dir, MetricsFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	var m Metrics
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("head: %s: %w", p, err)
	}
	return &m, nil
}

// WriteJSON writes v as indented JSON to path, atomically.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("head: encode %s: %w", path, err)
	}
	return fsutil.WriteFile(path, append(b, '\n'), 0o644)
}

// RunDir builds a run directory in a hidden sibling folder and moves it
// into place when every file is written, so that the final path holds
// either a complete run or nothing (or the previous complete run). A
// process killed half way leaves only the hidden ".NAME.partial-*" folder.
type RunDir struct {
	final, tmp string
	done       bool
}

// ErrRunExists is returned by CreateRunDir when the run directory exists
// and may not be replaced.
var ErrRunExists = errors.New("head: run directory exists")

// CreateRunDir starts a run directory at dir; parents are created. An
// existing dir is an error wrapping ErrRunExists unless overwrite is set,
// in which case Commit replaces it.
func CreateRunDir(dir string, overwrite bool) (*RunDir, error) {
	dir = filepath.Clean(dir)
	if _, err := os.Stat(dir); err == nil && !overwrite {
		return nil, fmt.Errorf("%w: %s (choose another --out, or --force to replace it)", ErrRunExists, dir)
	}
	parent, base := filepath.Split(dir)
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".partial-")
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("head: %w", err)
	}
	return &RunDir{final: dir, tmp: tmp}, nil
}

// Dir is the final path.
func (r *RunDir) Dir() string { return r.final }

// Path is where to write the file name before Commit.
func (r *RunDir) Path(name string) string { return filepath.Join(r.tmp, name) }

// Commit moves the finished folder into place, replacing an earlier run.
func (r *RunDir) Commit() error {
	if r.done {
		return fmt.Errorf("head: run directory %s: already committed or aborted", r.final)
	}
	r.done = true
	if err := fsutil.SyncDir(r.tmp); err != nil {
		os.RemoveAll(r.tmp)
		return err
	}
	var old string
	if _, err := os.Lstat(r.final); err == nil {
		old = r.tmp + ".old"
		if err := os.Rename(r.final, old); err != nil {
			os.RemoveAll(r.tmp)
			return fmt.Errorf("head: replace %s: %w", r.final, err)
		}
	}
	if err := os.Rename(r.tmp, r.final); err != nil {
		if old != "" {
			os.Rename(old, r.final)
		}
		os.RemoveAll(r.tmp)
		return fmt.Errorf("head: %w", err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return fsutil.SyncDir(filepath.Dir(r.final))
}

// Abort removes the unfinished folder. It is safe after Commit and
// repeatable.
func (r *RunDir) Abort() {
	if r == nil || r.done {
		return
	}
	r.done = true
	os.RemoveAll(r.tmp)
}

// Run is everything a run directory holds.
type Run struct {
	Settings  any // written as settings.json; must contain RunInfo's fields
	Weights   *Weights
	History   History
	Metrics   *Metrics // its Validation report also draws confusion.png
	Title     string   // shown on the plots
	Overwrite bool     // replace an existing run directory
}

// WriteRun writes a complete run directory at dir: settings.json,
// weights.safetensors, history.csv, metrics.json, curves.png and, when
// Metrics.Validation is set, confusion.png.
func WriteRun(dir string, r *Run) error {
	rd, err := CreateRunDir(dir, r.Overwrite)
	if err != nil {
		return err
	}
	defer rd.Abort()
	if err := WriteJSON(rd.Path(SettingsFile), r.Settings); err != nil {
		return err
	}
	if err := SaveWeights(rd.Path(WeightsFile), r.Weights); err != nil {
		return err
	}
	if err := WriteHistory(rd.Path(HistoryFile), r.History); err != nil {
		return err
	}
	if err := WriteJSON(rd.Path(MetricsFile), r.Metrics); err != nil {
		return err
	}
	if err := PlotCurves(rd.Path(CurvesFile), r.Title, Series{History: r.History}); err != nil {
		return err
	}
	if r.Metrics != nil && r.Metrics.Validation != nil {
		if err := PlotConfusion(rd.Path(ConfusionFile), r.Title+": validation confusion matrix", r.Metrics.Validation); err != nil {
			return err
		}
	}
	return rd.Commit()
}
