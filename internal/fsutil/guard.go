package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrOverlap is wrapped by the errors of CheckOutput.
var ErrOverlap = errors.New("fsutil: an output overlaps an input")

// ErrForeign is wrapped by the errors of CheckReplace.
var ErrForeign = errors.New("fsutil: not a folder that tlearn made")

// OverlapError says that writing Output would overwrite or delete Input.
type OverlapError struct {
	Output, Input string
	How           string // "is", "lies inside" or "holds"
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("fsutil: the output %s %s the input %s", e.Output, e.How, e.Input)
}

func (e *OverlapError) Is(target error) bool { return target == ErrOverlap }

// CheckOutput refuses an output path that is one of the inputs, lies
// inside one, or holds one (replacing an output folder deletes what it
// holds), with an *OverlapError. Paths are compared after resolving the
// symbolic links of their existing part, so a link does not hide an
// input. Empty inputs are ignored.
func CheckOutput(out string, inputs ...string) error {
	o, err := filepath.Abs(out)
	if err != nil {
		return nil // nothing to compare; opening the path reports the real problem
	}
	o = RealPath(o)
	for _, in := range inputs {
		if in == "" {
			continue
		}
		i, err := filepath.Abs(in)
		if err != nil {
			continue
		}
		i = RealPath(i)
		how := ""
		switch {
		case o == i:
			how = "is"
		case within(o, i):
			how = "lies inside"
		case within(i, o):
			how = "holds"
		default:
			continue
		}
		return &OverlapError{Output: out, Input: in, How: how}
	}
	return nil
}

// Within reports whether path is dir or lies inside it, after resolving
// symbolic links.
func Within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	return err1 == nil && err2 == nil && within(RealPath(p), RealPath(d))
}

// RealPath resolves the symbolic links of the longest existing prefix of
// the absolute path p.
func RealPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	dir, base := filepath.Split(p)
	if dir == p || dir == "" {
		return p
	}
	return filepath.Join(RealPath(filepath.Clean(dir)), base)
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// ForeignError says that Dir may not be replaced: it is not a tlearn
// folder of the Kind asked for.
type ForeignError struct {
	Dir, Kind string
	File      bool     // Dir is a file, not a folder
	Entries   []string // the first few names inside Dir, folders with a trailing "/"
	More      int      // how many more entries Dir holds
}

func (e *ForeignError) Error() string {
	if e.File {
		return fmt.Sprintf("fsutil: %s is a file, not a tlearn %s; it was left alone", e.Dir, e.Kind)
	}
	held := strings.Join(e.Entries, ", ")
	if e.More > 0 {
		held += fmt.Sprintf(" and %d more", e.More)
	}
	return fmt.Sprintf("fsutil: %s is not a tlearn %s (it holds %s); it was left alone", e.Dir, e.Kind, held)
}

func (e *ForeignError) Is(target error) bool { return target == ErrForeign }

// maxListed is how many entries a ForeignError names.
const maxListed = 3

// CheckReplace decides whether the existing folder dir may be replaced by
// a new tlearn folder of the given kind ("run folder", "feature cache",
// "dataset"): when it does not exist, is empty, or isKind recognises it
// (by its own marker or manifest). Anything else, a file included, is a
// *ForeignError that names a few of the entries inside.
func CheckReplace(dir, kind string, isKind func(dir string) bool) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("fsutil: %w", err)
	case !st.IsDir():
		return &ForeignError{Dir: dir, Kind: kind, File: true}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("fsutil: %w", err)
	}
	if len(entries) == 0 || isKind(dir) {
		return nil
	}
	e := &ForeignError{Dir: dir, Kind: kind}
	for i, d := range entries {
		if i == maxListed {
			e.More = len(entries) - i
			break
		}
		name := d.Name()
		if d.IsDir() {
			name += "/"
		}
		e.Entries = append(e.Entries, name)
	}
	return e
}
