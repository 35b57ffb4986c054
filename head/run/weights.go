package run

import (
	"errors"
	"fmt"
	"io"
	"os"

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

// LoadWeights reads and validates a weights file written by SaveWeights
// (or any safetensors file with the same tensors and metadata).
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
	w, err := head.ParseWeights(b)
	if err != nil {
		return nil, fmt.Errorf("run: weights %s: %w", path, err)
	}
	return w, nil
}
