package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// MarkerFile marks a folder as a dataset that tlearn's converters or
// split wrote: PrepareOutput writes it before the images and, with
// overwrite, replaces only a folder that has it (or an empty one).
const MarkerFile = ".tlearn-dataset"

// Kind names a dataset folder in the errors of fsutil.CheckReplace.
const Kind = "dataset (one made by tlearn data)"

// IsMade reports whether dir holds a MarkerFile.
func IsMade(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, MarkerFile))
	return err == nil && st.Mode().IsRegular()
}

// PrepareOutput makes the folder out or checks that it is empty; with
// overwrite it removes out/<part> for each part instead (other content is
// left alone), but only from a folder that a previous PrepareOutput marked
// (an *fsutil.ForeignError otherwise). It refuses a part that holds src,
// so that removing parts never touches the input. A non-empty out without
// overwrite is an error wrapping ErrNotEmpty. It leaves out marked with
// MarkerFile.
func PrepareOutput(src, out string, overwrite bool, parts ...string) error {
	for _, p := range parts {
		if fsutil.Within(src, filepath.Join(out, p)) {
			return fmt.Errorf("dataset: input %s is inside the output %s, which would be replaced", src, filepath.Join(out, p))
		}
	}
	fi, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(out, 0o755); err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		return mark(out, parts)
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
		return mark(out, parts)
	}
	if !overwrite {
		return fmt.Errorf("%w: %s", ErrNotEmpty, out)
	}
	if err := fsutil.CheckReplace(out, Kind, IsMade); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	for _, p := range parts {
		if err := os.RemoveAll(filepath.Join(out, p)); err != nil {
			return fmt.Errorf("dataset: clear %s: %w", filepath.Join(out, p), err)
		}
	}
	return mark(out, parts)
}

// mark writes out's MarkerFile: what wrote the folder and which of its
// sub-folders a rerun with overwrite replaces.
func mark(out string, parts []string) error {
	text := "written by tlearn data; a rerun with --force replaces " + strings.Join(parts, "/ and ") + "/\n"
	if err := fsutil.WriteFile(filepath.Join(out, MarkerFile), []byte(text), 0o644); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	return nil
}
