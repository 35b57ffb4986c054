package head

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// CheckpointFile is the name FineTune's checkpoint gets in a run directory.
const CheckpointFile = "finetune-checkpoint.safetensors"

// A checkpoint is a weights file (the same safetensors format, so any
// reader opens it) with the optimizer moments as extra tensors named
// traingraph.MomentName(param, "m"/"v"), the best epoch's parameters under
// "best/", all in torchvision layout, and the rest of the training state as
// JSON in the metadata entry checkpointMeta.
const (
	checkpointMeta    = "tlearn_finetune_state"
	checkpointFormat  = 1
	checkpointBestPfx = "best/"
)

// ftState is the training state besides the tensors.
type ftState struct {
	Format      int     `json:"format"`
	Fingerprint string  `json:"fingerprint"`
	Steps       int     `json:"steps"`
	History     History `json:"history"`
	Order       []int32 `json:"order"`
	Shuffle     []byte  `json:"shuffle_pcg"`
	Dropout     []byte  `json:"dropout_pcg"`
	BestEpoch   int     `json:"best_epoch"`
	SinceBest   int     `json:"since_best"`
	Stopped     bool    `json:"stopped"`
}

type ftCheckpoint struct {
	weights *Weights
	moments map[string]Tensor
	best    *Weights // nil unless the run keeps its best epoch
	state   ftState
}

// fingerprint identifies what a checkpoint may resume: the settings
// (except the number of epochs, which a resumed run may raise) and the
// data's shape, classes and labels.
func fingerprint(s FineTuneSettings, train, val *MapsData) string {
	s.Epochs = 0
	h := sha256.New()
	b, _ := json.Marshal(struct {
		S       FineTuneSettings
		Shape   [3]int
		Classes []string
		N, NVal int
	}{s, train.Shape, train.Classes, train.Len(), val.Len()})
	h.Write(b)
	binary.Write(h, binary.LittleEndian, train.Y)
	binary.Write(h, binary.LittleEndian, val.Y)
	return hex.EncodeToString(h.Sum(nil))
}

// checkpoint captures the state after an epoch.
func (r *ftRun) checkpoint(sess *ftSession, classes []string, train, val *MapsData) *ftCheckpoint {
	shuf, _ := r.shufflePCG.MarshalBinary()
	drop, _ := r.drop.src.MarshalBinary()
	return &ftCheckpoint{
		weights: sess.weights(classes),
		moments: sess.momentTensors(),
		best:    r.best,
		state: ftState{
			Format:      checkpointFormat,
			Fingerprint: fingerprint(r.s, train, val),
			Steps:       r.steps,
			History:     slices.Clone(r.history),
			Order:       slices.Clone(r.order),
			Shuffle:     shuf,
			Dropout:     drop,
			BestEpoch:   r.bestEpoch,
			SinceBest:   r.sinceBest,
			Stopped:     r.stopped,
		},
	}
}

// restore continues r from a checkpoint of the same settings and data.
func (r *ftRun) restore(ck *ftCheckpoint, train, val *MapsData) error {
	st := ck.state
	switch {
	case st.Format != checkpointFormat:
		return fmt.Errorf("checkpoint format %d, this tlearn reads %d", st.Format, checkpointFormat)
	case st.Fingerprint != fingerprint(r.s, train, val):
		return errors.New("it was written by a run with other settings or data; delete it to start over, or use another run directory")
	case len(st.Order) != len(r.order):
		return fmt.Errorf("it orders %d examples, the data has %d", len(st.Order), len(r.order))
	case len(st.History) > r.s.Epochs:
		return fmt.Errorf("it holds %d epochs, more than the %d asked for", len(st.History), r.s.Epochs)
	case r.keepBest && ck.best == nil:
		return errors.New("it has no best-epoch weights")
	case st.BestEpoch < -1 || st.BestEpoch >= len(st.History) || (len(st.History) > 0 && st.BestEpoch < 0):
		return fmt.Errorf("its best epoch %d is not one of its %d epochs (damaged?)", st.BestEpoch, len(st.History))
	case !isPermutation(st.Order):
		return errors.New("its example order is not a permutation of the examples (damaged?)")
	}
	if err := r.shufflePCG.UnmarshalBinary(st.Shuffle); err != nil {
		return fmt.Errorf("shuffle generator: %w", err)
	}
	if err := r.drop.src.UnmarshalBinary(st.Dropout); err != nil {
		return fmt.Errorf("dropout generator: %w", err)
	}
	r.steps, r.history, r.order = st.Steps, st.History, st.Order
	r.bestEpoch, r.sinceBest, r.stopped = st.BestEpoch, st.SinceBest, st.Stopped
	r.best = ck.best
	return nil
}

// isPermutation reports whether order holds each of 0..len(order)-1 once,
// as it must to index the data when training goes on.
func isPermutation(order []int32) bool {
	seen := make([]bool, len(order))
	for _, i := range order {
		if i < 0 || int(i) >= len(order) || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

// writeCheckpoint writes ck to path atomically.
func writeCheckpoint(path string, ck *ftCheckpoint) error {
	all := &Weights{Classes: ck.weights.Classes, Tensors: map[string]Tensor{}}
	for n, t := range ck.weights.Tensors {
		all.Tensors[n] = t
	}
	for n, t := range ck.moments {
		all.Tensors[n] = t
	}
	if ck.best != nil {
		for n, t := range ck.best.Tensors {
			all.Tensors[checkpointBestPfx+n] = t
		}
	}
	state, err := json.Marshal(ck.state)
	if err != nil {
		return fmt.Errorf("head: checkpoint %s: %w", path, err)
	}
	if err := fsutil.WriteWith(path, 0o644, func(w io.Writer) error {
		return all.writeWithMeta(w, map[string]string{checkpointMeta: string(state)})
	}); err != nil {
		return fmt.Errorf("head: checkpoint: %w", err)
	}
	return nil
}

// readCheckpoint reads a checkpoint; a missing file gives an error
// wrapping os.ErrNotExist.
func readCheckpoint(path string) (*ftCheckpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("head: %w", err)
	}
	ck, err := parseCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("head: checkpoint %s: %w", path, err)
	}
	return ck, nil
}

// parseCheckpoint decodes a checkpoint held in memory.
func parseCheckpoint(b []byte) (*ftCheckpoint, error) {
	all, err := ParseWeights(b)
	if err != nil {
		return nil, err
	}
	// ParseWeights checked the header's bounds.
	n := binary.LittleEndian.Uint64(b)
	var hdr struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		return nil, err
	}
	raw, ok := hdr.Meta[checkpointMeta]
	if !ok {
		return nil, fmt.Errorf("no %s metadata (a weights file, not a fine-tuning checkpoint)", checkpointMeta)
	}
	ck := &ftCheckpoint{
		weights: &Weights{Classes: all.Classes, Tensors: map[string]Tensor{}},
		moments: map[string]Tensor{},
	}
	if err := json.Unmarshal([]byte(raw), &ck.state); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	for name, t := range all.Tensors {
		switch {
		case strings.HasPrefix(name, checkpointBestPfx):
			if ck.best == nil {
				ck.best = &Weights{Classes: all.Classes, Tensors: map[string]Tensor{}}
			}
			ck.best.Tensors[strings.TrimPrefix(name, checkpointBestPfx)] = t
		case strings.HasSuffix(name, ".m") || strings.HasSuffix(name, ".v"):
			ck.moments[name] = t
		default:
			ck.weights.Tensors[name] = t
		}
	}
	return ck, nil
}
