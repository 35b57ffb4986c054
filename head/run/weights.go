package run

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// WeightsFile is the name of the weights inside a run directory.
const WeightsFile = "weights.safetensors"

// maxWeightsBytes bounds the weights files LoadWeights reads into memory.
const maxWeightsBytes = 1 << 34

// SaveWeights writes w to path in the safetensors format of
// head.Weights.Encode, atomically.
func SaveWeights(path string, w *head.Weights) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("run: save %s: %w", path, err)
	}
	if err := fsutil.WriteWith(path, 0o644, func(out io.Writer) error { return w.Encode(out, nil) }); err != nil {
		return fmt.Errorf("run: save weights: %w", err)
	}
	return nil
}

// ErrChanged is wrapped by the error about a run's weights file whose
// sha256 is not the one its settings.json recorded when the run was
// written: the file was changed or damaged since.
var ErrChanged = errors.New("run: weights changed since the run was written")

// LoadWeights reads and validates a weights file written by SaveWeights
// (or any safetensors file with the same tensors and metadata). When the
// settings.json next to it records a sha256 of the weights (Write does), a
// file with another sha256 is an error wrapping ErrChanged.
func LoadWeights(path string) (*head.Weights, error) {
	f, err := fsutil.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("run: weights %s: %w (is this a finished run directory?)", path, err)
		}
		return nil, fmt.Errorf("run: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if st.Size() > maxWeightsBytes {
		return nil, fmt.Errorf("run: weights %s: %d bytes is too large", path, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("run: read %s: %w", path, err)
	}
	if err := checkRecorded(path, b); err != nil {
		return nil, err
	}
	w, err := head.ParseWeights(b)
	if err != nil {
		return nil, fmt.Errorf("run: weights %s: %w", path, err)
	}
	return w, nil
}

// checkRecorded compares the sha256 of the weights b read from path with
// the one the settings.json next to them records, if it records one.
func checkRecorded(path string, b []byte) error {
	if filepath.Base(path) != WeightsFile {
		return nil
	}
	var info Info
	if readSettingsJSON(filepath.Dir(path), &info) != nil || info.WeightsSHA256 == "" {
		return nil
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != info.WeightsSHA256 {
		return fmt.Errorf("%w: %s has sha256 %.12s…, %s records %.12s… (the file was changed or damaged after training)",
			ErrChanged, path, got, filepath.Join(filepath.Dir(path), SettingsFile), info.WeightsSHA256)
	}
	return nil
}
