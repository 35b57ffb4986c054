package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrNotRegular is wrapped by every *NotRegularError.
var ErrNotRegular = errors.New("not a regular file")

// NotRegularError is a path that names a named pipe, a device or a socket
// where a file to read was expected. Opening a FIFO for reading blocks until
// a writer comes, and a device may never end, so Open and ReadFile refuse
// them from their mode alone, before opening. The message, like that of
// os's *PathError which it stands in for, has no package prefix: callers
// wrap it with theirs.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file: refusing to read it", e.Path, Kind(e.Mode))
}

func (e *NotRegularError) Unwrap() error { return ErrNotRegular }

// Kind says in words what a file of mode m is: "a named pipe (FIFO)", "a
// character device", "a folder" and so on.
func Kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a folder"
	case m.IsRegular():
		return "a regular file"
	}
	return "an irregular file"
}

// special reports whether m is a kind of file that reading may block on or
// never finish: a FIFO, a device, a socket or another irregular file.
func special(m fs.FileMode) bool {
	return m&(fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice|fs.ModeSocket|fs.ModeIrregular) != 0
}

// CheckReadable refuses a path (symbolic links followed) that names a FIFO,
// a device or a socket, with a *NotRegularError. Anything else passes,
// folders and missing files included: opening them fails at once, with
// the usual error.
func CheckReadable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if special(fi.Mode()) {
		return &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	return nil
}

// Open is os.Open for files from outside: it refuses a FIFO, device or
// socket (CheckReadable) before opening it.
func Open(path string) (*os.File, error) {
	if err := CheckReadable(path); err != nil {
		return nil, err
	}
	return os.Open(path)
}

// OpenFile is os.OpenFile with Open's check.
func OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	if err := CheckReadable(path); err != nil {
		return nil, err
	}
	return os.OpenFile(path, flag, perm)
}

// ReadFile is os.ReadFile with Open's check.
func ReadFile(path string) ([]byte, error) {
	if err := CheckReadable(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}
