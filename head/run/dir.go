package run

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// Kind names a run directory in the errors of fsutil.CheckReplace.
const Kind = "run folder"

// Files are the paths of the files that a run directory dir holds (or
// would hold): settings.json, the weights, history, metrics and plots.
// Commands that read a run take them as their inputs, so that an output
// may go next to them (compare puts a classifier there) but never over one.
func Files(dir string) []string {
	var p []string
	for _, name := range []string{SettingsFile, WeightsFile, HistoryFile, MetricsFile, CurvesFile, ConfusionFile} {
		p = append(p, filepath.Join(dir, name))
	}
	return p
}

// IsRun reports whether dir is a run directory: it has a settings.json
// that tlearn wrote (ReadInfo accepts it).
func IsRun(dir string) bool {
	_, err := ReadInfo(dir)
	return err == nil
}

// CheckNew reports whether a new run directory may be written at dir: a
// missing one always; an existing one is an error wrapping ErrExists
// unless overwrite is set, and even then only a run directory (or an empty
// folder) may be replaced: anything else is an *fsutil.ForeignError.
func CheckNew(dir string, overwrite bool) error {
	if _, err := os.Stat(dir); err == nil && !overwrite {
		return fmt.Errorf("%w: %s", ErrExists, dir)
	}
	if err := fsutil.CheckReplace(dir, Kind, IsRun); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// Create starts a run directory at dir; parents are created. It refuses
// what CheckNew refuses; with overwrite, Commit replaces the existing run.
func Create(dir string, overwrite bool) (*Dir, error) {
	dir = filepath.Clean(dir)
	if err := CheckNew(dir, overwrite); err != nil {
		return nil, err
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

// Write writes a complete run directory at dir: settings.json (with
// Info.WeightsSHA256 filled in), weights.safetensors, history.csv, metrics.json, curves.png and, when
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
	if err := SaveWeights(rd.Path(WeightsFile), c.Weights); err != nil {
		return err
	}
	b, err := os.ReadFile(rd.Path(WeightsFile))
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	sum := sha256.Sum256(b)
	settings, err := withWeightsSHA256(c.Settings, hex.EncodeToString(sum[:]))
	if err != nil {
		return fmt.Errorf("run: encode %s: %w", rd.Path(SettingsFile), err)
	}
	if err := fsutil.WriteFile(rd.Path(SettingsFile), settings, 0o644); err != nil {
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

// withWeightsSHA256 is settings as indented JSON with the weights_sha256
// field set to sum. Settings is any struct holding Info's fields; the field
// is spliced in rather than set so that Write takes any such struct, and
// keeps the others' order.
func withWeightsSHA256(settings any, sum string) ([]byte, error) {
	b, err := json.Marshal(settings)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Sum *string `json:"weights_sha256"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, err // not an object
	}
	if probe.Sum != nil {
		return nil, errors.New("settings already hold weights_sha256 (Write fills it in)")
	}
	b = b[:len(b)-1]
	if len(b) > 1 {
		b = append(b, ',')
	}
	b = append(b, `"weights_sha256":"`+sum+`"}`...)
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
