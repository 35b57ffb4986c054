package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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
	// Overwrite lets the output folder be non-empty: its train and test
	// folders are deleted first (other content is left alone).
	Overwrite bool
	// Progress, when set, gets one phase that counts the images written.
	Progress progress.Reporter
}

// ConvertSummary says what a conversion wrote.
type ConvertSummary struct {
	Format  string   // cifar.FormatPython, cifar.FormatBinary or mnist.FormatIDX
	Classes []string // class folder names, in label order
	Train   []int    // images written per class under train/
	Test    []int    // images written per class under test/
}

// PrepareOutput makes the folder out or checks that it is empty; with
// overwrite it removes out/<part> for each part instead (other content is
// left alone). It refuses a part that holds src, so that removing parts
// never touches the input. A non-empty out without overwrite is an error
// wrapping ErrNotEmpty.
func PrepareOutput(src, out string, overwrite bool, parts ...string) error {
	if err := checkNotNested(src, out, parts); err != nil {
		return err
	}
	fi, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(out, 0o755); err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("dataset: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("dataset: output %s is a file, not a folder", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	if !overwrite {
		return fmt.Errorf("%w: %s", ErrNotEmpty, out)
	}
	for _, p := range parts {
		if err := os.RemoveAll(filepath.Join(out, p)); err != nil {
			return fmt.Errorf("dataset: clear %s: %w", filepath.Join(out, p), err)
		}
	}
	return nil
}

func checkNotNested(src, out string, parts []string) error {
	s, err1 := filepath.Abs(src)
	o, err2 := filepath.Abs(out)
	if err1 != nil || err2 != nil {
		return nil // nothing to compare; the later steps report the real problem
	}
	s, o = realPath(s), realPath(o)
	for _, p := range parts {
		if within(s, filepath.Join(o, p)) {
			return fmt.Errorf("dataset: input %s is inside the output %s, which would be replaced", src, filepath.Join(out, p))
		}
	}
	return nil
}

// Within reports whether path is dir or lies inside it, after resolving
// symbolic links.
func Within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	return err1 == nil && err2 == nil && within(realPath(p), realPath(d))
}

// realPath resolves symbolic links of the longest existing prefix of p.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	dir, base := filepath.Split(p)
	if dir == p || dir == "" {
		return p
	}
	return filepath.Join(realPath(filepath.Clean(dir)), base)
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
