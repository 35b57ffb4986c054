package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// ErrNotEmpty is returned when an output folder already has content and
// overwriting was not asked for.
var ErrNotEmpty = errors.New("dataset: output folder is not empty")

// ConvertSettings controls the archive converters (cifar.Convert,
// mnist.Convert). The zero value converts everything into an empty or new
// folder.
type ConvertSettings struct {
	// TrainPerClass and TestPerClass keep only the first N images of each
	// class (in the order of the source files); 0 keeps all.
	TrainPerClass int
	TestPerClass  int
	// Overwrite lets the output folder be non-empty when an earlier
	// conversion or split made it (MarkerFile): its train and test folders
	// are deleted first (other content is left alone). Any other non-empty
	// folder is refused with an *fsutil.ForeignError.
	Overwrite bool
	// Command, when set, is recorded in the MarkerFile as the command line
	// that would finish the dataset if this conversion were interrupted.
	Command string
	// Progress, when set, gets one phase that counts the images written.
	Progress progress.Reporter
}

// ConvertSummary says what a conversion wrote.
type ConvertSummary struct {
	Format  string   // cifar.FormatPython, cifar.FormatBinary or mnist.FormatIDX
	Classes []string // class folder names, in label order
	Train   []int    // images written per class under train/
	Test    []int    // images written per class under test/
	// Restarted says that out was an incomplete dataset of the same
	// settings, which the conversion replaced (PrepareOutput).
	Restarted bool
}

// MarkerFile marks a folder as a dataset that tlearn's converters or
// split wrote: PrepareOutput writes it, as a Marker in state
// StateIncomplete, before the images, and FinishOutput rewrites it in state
// StateComplete after the last one; with overwrite, PrepareOutput replaces
// only a folder that has it (or an empty one). A marker written before the
// states existed (plain text) counts as complete.
const MarkerFile = ".tlearn-dataset"

// The states of a Marker.
const (
	StateIncomplete = "incomplete"
	StateComplete   = "complete"
)

// Kind names a dataset folder in the errors of fsutil.CheckReplace.
const Kind = "dataset (one made by tlearn data)"

// ErrIncomplete is wrapped by *IncompleteError.
var ErrIncomplete = errors.New("dataset: the dataset is incomplete")

// Origin says what writes a dataset: PrepareOutput records it in the
// MarkerFile, and a rerun with the same Made restarts an incomplete one.
type Origin struct {
	// Made names the writer, its input and its settings in words
	// ("mnist /data/idx, train per class 3, test per class all"); two runs
	// that would write the same images have the same Made.
	Made string
	// Command is the command line that wrote it, when the caller has one
	// to record (the CLI does); readers of an incomplete dataset repeat it
	// in IncompleteError.Command.
	Command string
}

// Marker is the content of a MarkerFile.
type Marker struct {
	State   string   `json:"state"` // StateIncomplete or StateComplete
	Made    string   `json:"made,omitempty"`
	Command string   `json:"command,omitempty"`
	Parts   []string `json:"parts,omitempty"` // the sub-folders a rerun replaces
}

// IncompleteError says that Dir is, or lies in, a dataset that tlearn
// began to write and did not finish (it was interrupted or killed).
type IncompleteError struct {
	Dir     string // the folder that holds the MarkerFile
	Made    string // Marker.Made
	Command string // Marker.Command, possibly empty
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("dataset: %s is incomplete: writing it (%s) was interrupted; the same command restarts it", e.Dir, e.Made)
}

func (e *IncompleteError) Is(target error) bool { return target == ErrIncomplete }

// IsMade reports whether dir holds a MarkerFile.
func IsMade(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, MarkerFile))
	return err == nil && st.Mode().IsRegular()
}

// ReadMarker reads dir's MarkerFile. A marker from before the states
// (plain text) reads as StateComplete.
func ReadMarker(dir string) (*Marker, error) {
	b, err := fsutil.ReadFile(filepath.Join(dir, MarkerFile))
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	m := &Marker{}
	if len(b) == 0 || b[0] != '{' {
		return &Marker{State: StateComplete}, nil
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", filepath.Join(dir, MarkerFile), err)
	}
	return m, nil
}

// CheckComplete refuses, with an *IncompleteError, a folder dir that is an
// incomplete dataset or lies inside one of its parts (train/ of a
// conversion, or train/cat/), judged by the MarkerFile of dir or of the
// nearest folder above it that has one. Folders without a MarkerFile
// above them, from anywhere, pass.
func CheckComplete(dir string) error {
	d, err := filepath.Abs(dir)
	if err != nil {
		return nil // nothing to look up; listing dir reports the real problem
	}
	for rel := ""; ; {
		if IsMade(d) {
			m, err := ReadMarker(d)
			if err != nil {
				return err
			}
			first, _, _ := strings.Cut(rel, string(filepath.Separator))
			if m.State != StateComplete && (rel == "" || slices.Contains(m.Parts, first)) {
				return &IncompleteError{Dir: strings.TrimSuffix(filepath.Clean(dir), string(filepath.Separator)+rel), Made: m.Made, Command: m.Command}
			}
			return nil
		}
		up := filepath.Dir(d)
		if up == d {
			return nil
		}
		rel = filepath.Join(filepath.Base(d), rel)
		d = up
	}
}

// PrepareOutput makes the folder out or checks that it is empty, and marks
// it StateIncomplete with o. With overwrite it removes out/<part> for each
// part instead (other content is left alone), but only from a folder that
// a previous PrepareOutput marked (an *fsutil.ForeignError otherwise).
// Without overwrite, an incomplete dataset that the same Origin.Made began
// is restarted the same way, and restarted is true. It refuses a part that
// holds src, so that removing parts never touches the input. Any other
// non-empty out without overwrite is an error wrapping ErrNotEmpty that
// says whether out is a complete or an incomplete dataset.
func PrepareOutput(src, out string, overwrite bool, o Origin, parts ...string) (restarted bool, err error) {
	for _, p := range parts {
		if fsutil.Within(src, filepath.Join(out, p)) {
			return false, fmt.Errorf("dataset: input %s is inside the output %s, which would be replaced", src, filepath.Join(out, p))
		}
	}
	mk := &Marker{State: StateIncomplete, Made: o.Made, Command: o.Command, Parts: parts}
	fi, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(out, 0o755); err != nil {
			return false, fmt.Errorf("dataset: %w", err)
		}
		return false, writeMarker(out, mk)
	case err != nil:
		return false, fmt.Errorf("dataset: %w", err)
	case !fi.IsDir():
		return false, fmt.Errorf("dataset: output %s is a file, not a folder", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return false, fmt.Errorf("dataset: %w", err)
	}
	if len(entries) == 0 {
		return false, writeMarker(out, mk)
	}
	if !overwrite {
		if !IsMade(out) {
			return false, fmt.Errorf("%w: %s", ErrNotEmpty, out)
		}
		old, err := ReadMarker(out)
		if err != nil {
			return false, err
		}
		switch {
		case old.State == StateComplete && old.Made != "":
			return false, fmt.Errorf("%w: %s is a complete dataset (%s)", ErrNotEmpty, out, old.Made)
		case old.State == StateComplete:
			return false, fmt.Errorf("%w: %s is a complete dataset", ErrNotEmpty, out)
		case old.Made != o.Made || !slices.Equal(old.Parts, parts):
			return false, fmt.Errorf("%w: %s is an incomplete dataset of other settings (%s)", ErrNotEmpty, out, old.Made)
		}
		restarted = true
	}
	if err := fsutil.CheckReplace(out, Kind, IsMade); err != nil {
		return false, fmt.Errorf("dataset: %w", err)
	}
	// Marked incomplete before anything is removed: a kill in between
	// leaves a folder that says so.
	if err := writeMarker(out, mk); err != nil {
		return false, err
	}
	for _, p := range parts {
		if err := os.RemoveAll(filepath.Join(out, p)); err != nil {
			return false, fmt.Errorf("dataset: clear %s: %w", filepath.Join(out, p), err)
		}
	}
	return restarted, nil
}

// FinishOutput marks the dataset out, which PrepareOutput began, complete.
func FinishOutput(out string) error {
	m, err := ReadMarker(out)
	if err != nil {
		return err
	}
	m.State = StateComplete
	return writeMarker(out, m)
}

// writeMarker writes out's MarkerFile atomically.
func writeMarker(out string, m *Marker) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	if err := fsutil.WriteFile(filepath.Join(out, MarkerFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	return nil
}
