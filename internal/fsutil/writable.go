package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrUnwritable is wrapped by every *UnwritableError.
var ErrUnwritable = errors.New("cannot be written")

// UnwritableError says why Path cannot be created: Where is the existing
// folder (or the file in the way) that the check stopped at.
type UnwritableError struct {
	Path  string
	Where string
	Err   error
}

func (e *UnwritableError) Error() string {
	return fmt.Sprintf("fsutil: cannot create %s: %v", e.Path, e.Err)
}

func (e *UnwritableError) Unwrap() []error { return []error{ErrUnwritable, e.Err} }

// CheckCreatable reports, before any work that ends by writing path, whether
// path (a file or folder, with any missing parents) could be created: its
// nearest existing ancestor must be a folder in which a file can be made.
// It makes and removes a probe file there, since the mode bits alone do not
// tell (root, ACLs, read-only mounts); the probe is named as a temporary of
// the output (".NAME.tmp-probe-*"), so that Lock.RemoveStale clears one
// that a killed process left. An existing path is not an error
// here: whether it may be replaced is the caller's rule.
func CheckCreatable(path string) error {
	path = filepath.Clean(path)
	dir := filepath.Dir(path)
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return &UnwritableError{Path: path, Where: dir, Err: fmt.Errorf("%s is %s, not a folder", dir, Kind(fi.Mode()))}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return &UnwritableError{Path: path, Where: dir, Err: err}
		}
		up := filepath.Dir(dir)
		if up == dir {
			return &UnwritableError{Path: path, Where: dir, Err: err}
		}
		dir = up
	}
	// Named as a temporary of path's first missing part ("."+NAME+".tmp-*"):
	// a probe left by a kill in between is then among what RemoveStale
	// removes for the output, when the output's folder exists.
	first := filepath.Base(path)
	if rel, err := filepath.Rel(dir, path); err == nil {
		first, _, _ = strings.Cut(rel, string(filepath.Separator))
	}
	f, err := os.CreateTemp(dir, "."+first+".tmp-probe-*")
	if err != nil {
		return &UnwritableError{Path: path, Where: dir, Err: fmt.Errorf("folder %s is not writable: %w", dir, bareError(err))}
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// bareError drops the path from an *fs.PathError or *os.LinkError, whose
// path is a temporary name that means nothing to the user; the caller's
// message names the final path instead.
func bareError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// Renamed is err with every mention of the temporary path tmp replaced by
// final, for errors from writing a file or folder that is renamed into
// place when done: the user knows the final path, not the temporary one.
// errors.Is and errors.As see err's chain unchanged. nil stays nil.
func Renamed(err error, tmp, final string) error {
	if err == nil || tmp == "" || !strings.Contains(err.Error(), tmp) {
		return err
	}
	return &renamedError{msg: strings.ReplaceAll(err.Error(), tmp, final), err: err}
}

type renamedError struct {
	msg string
	err error
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }
