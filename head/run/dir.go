package run

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// File names inside a run directory (DESIGN.md, "Files on disk"), besides
// WeightsFile and HistoryFile.
const (
	SettingsFile  = "settings.json"
	MetricsFile   = "metrics.json"
	CurvesFile    = "curves.png"
	ConfusionFile = "confusion.png"
)

// Dir builds a run directory in a hidden sibling folder and moves it into
// place when every file is written, so that the final path holds either a
// complete run or nothing (or the previous complete run). A process killed
// half way leaves only the hidden ".NAME.partial-*" folder.
type Dir struct {
	final, tmp string
	done       bool
}

// ErrExists is returned by Create and Write when the run directory exists
// and may not be replaced.
var ErrExists = errors.New("run: run directory exists")

// Create starts a run directory at dir; parents are created. An existing
// dir is an error wrapping ErrExists unless overwrite is set, in which case
// Commit replaces it.
func Create(dir string, overwrite bool) (*Dir, error) {
	dir = filepath.Clean(dir)
	if _, err := os.Stat(dir); err == nil && !overwrite {
		return nil, fmt.Errorf("%w: %s", ErrExists, dir)
	}
	parent, base := filepath.Split(dir)
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("run: create run directory %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".partial-")
	if err != nil {
		// The error names the temporary's pattern; the user knows dir.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("run: create run directory %s: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("run: create run directory %s: %w", dir, fsutil.Renamed(err, tmp, dir))
	}
	return &Dir{final: dir, tmp: tmp}, nil
}

// Path is where to write the file name before Commit.
func (r *Dir) Path(name string) string { return filepath.Join(r.tmp, name) }

// Err makes an error from writing a file of the unfinished folder name the
// file's final path: the hidden ".NAME.partial-*" folder is gone by the
// time the user reads it.
func (r *Dir) Err(err error) error { return fsutil.Renamed(err, r.tmp, r.final) }

// Commit moves the finished folder into place, replacing an earlier run.
func (r *Dir) Commit() error { return r.Err(r.commit()) }

func (r *Dir) commit() error {
	if r.done {
		return fmt.Errorf("run: run directory %s: already committed or aborted", r.final)
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
			return fmt.Errorf("run: replace %s: %w", r.final, err)
		}
	}
	if err := os.Rename(r.tmp, r.final); err != nil {
		if old != "" {
			os.Rename(old, r.final)
		}
		os.RemoveAll(r.tmp)
		return fmt.Errorf("run: %w", err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return fsutil.SyncDir(filepath.Dir(r.final))
}

// Abort removes the unfinished folder. It is safe after Commit and
// repeatable.
func (r *Dir) Abort() {
	if r == nil || r.done {
		return
	}
	r.done = true
	os.RemoveAll(r.tmp)
}

// Contents is everything a run directory holds.
type Contents struct {
	Settings  any // written as settings.json; must contain Info's fields
	Weights   *head.Weights
	History   head.History
	Metrics   *Metrics // its Validation report also draws confusion.png
	Title     string   // shown on the plots
	Overwrite bool     // replace an existing run directory
}

// Write writes a complete run directory at dir: settings.json,
// weights.safetensors, history.csv, metrics.json, curves.png and, when
// Metrics.Validation is set, confusion.png.
func Write(dir string, c *Contents) error {
	rd, err := Create(dir, c.Overwrite)
	if err != nil {
		return err
	}
	defer rd.Abort()
	return rd.Err(write(rd, c))
}

func write(rd *Dir, c *Contents) error {
	if err := WriteJSON(rd.Path(SettingsFile), c.Settings); err != nil {
		return err
	}
	if err := SaveWeights(rd.Path(WeightsFile), c.Weights); err != nil {
		return err
	}
	if err := WriteHistory(rd.Path(HistoryFile), c.History); err != nil {
		return err
	}
	if err := WriteJSON(rd.Path(MetricsFile), c.Metrics); err != nil {
		return err
	}
	if err := PlotCurves(rd.Path(CurvesFile), c.Title, Series{History: c.History}); err != nil {
		return err
	}
	if c.Metrics != nil && c.Metrics.Validation != nil {
		if err := PlotConfusion(rd.Path(ConfusionFile), c.Title+": validation confusion matrix", c.Metrics.Validation); err != nil {
			return err
		}
	}
	return rd.Commit()
}
