package finetune

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/tlearn/tlearn/head"
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
	checkpointFormat  = 2
	checkpointBestPfx = "best/"
	checkpointSum     = "tlearn_tensors_sha256" // hex sha256 of the bytes after the header
	// checkpointFormat1 is the format of tlearn before epochs were counted
	// from 1: the same but for its history, whose epochs count from 0.
	checkpointFormat1 = 1
)

// ftState is the training state besides the tensors. BestEpoch is the
// index in History of the best epoch (head.EpochState.Best).
type ftState struct {
	Format      int          `json:"format"`
	Fingerprint string       `json:"fingerprint"`
	Steps       int          `json:"steps"`
	History     head.History `json:"history"`
	Order       []int32      `json:"order"`
	Shuffle     []byte       `json:"shuffle_pcg"`
	Dropout     []byte       `json:"dropout_pcg"`
	BestEpoch   int          `json:"best_epoch"`
	SinceBest   int          `json:"since_best"`
	Stopped     bool         `json:"stopped"`
}

type ftCheckpoint struct {
	weights *head.Weights
	moments map[string]head.Tensor
	best    *head.Weights // nil unless the run keeps its best epoch
	state   ftState
}

// fingerprint identifies what a checkpoint may resume: the settings
// (except the number of epochs, which a resumed run may raise) and the
// data's shape, classes and labels.
func fingerprint(s Settings, train, val *MapsData) string {
	if s.Schedule == head.ScheduleConstant {
		// More epochs continue the same run; under a schedule they change
		// every step's rate.
		s.Epochs = 0
	}
	h := sha256.New()
	b, _ := json.Marshal(struct {
		S       Settings
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
func (m *model) checkpoint(st *head.EpochState) *ftCheckpoint {
	shuf, _ := st.Shuffle.MarshalBinary()
	drop, _ := m.drop.MarshalBinary()
	return &ftCheckpoint{
		weights: m.sess.weights(m.train.Classes),
		moments: m.sess.momentTensors(),
		best:    m.best,
		state: ftState{
			Format:      checkpointFormat,
			Fingerprint: fingerprint(m.s, m.train, m.val),
			Steps:       m.steps,
			History:     slices.Clone(st.History),
			Order:       slices.Clone(st.Order),
			Shuffle:     shuf,
			Dropout:     drop,
			BestEpoch:   st.Best,
			SinceBest:   st.SinceBest,
			Stopped:     st.Stopped,
		},
	}
}

// restore continues m and the epoch loop's state st from a checkpoint of
// the same settings and data.
func (m *model) restore(ck *ftCheckpoint, st *head.EpochState) error {
	c := ck.state
	switch {
	case c.Format != checkpointFormat && c.Format != checkpointFormat1:
		return fmt.Errorf("checkpoint format %d, this tlearn reads %d and %d", c.Format, checkpointFormat1, checkpointFormat)
	case c.Fingerprint != fingerprint(m.s, m.train, m.val):
		return otherRunError{}
	case len(c.Order) != len(st.Order):
		return fmt.Errorf("it orders %d examples, the data has %d", len(c.Order), len(st.Order))
	case len(c.History) > m.s.Epochs:
		return fmt.Errorf("it holds %d epochs, more than the %d asked for", len(c.History), m.s.Epochs)
	case (m.s.SaveBest || m.s.EarlyStop > 0) && ck.best == nil:
		return errors.New("it has no best-epoch weights")
	case c.BestEpoch < -1 || c.BestEpoch >= len(c.History) || (len(c.History) > 0 && c.BestEpoch < 0):
		return fmt.Errorf("its best epoch %d is not one of its %d epochs (damaged?)", c.BestEpoch, len(c.History))
	case !isPermutation(c.Order, st.Order):
		return errors.New("its example order is not a permutation of the examples trained on (damaged?)")
	}
	if err := st.Shuffle.UnmarshalBinary(c.Shuffle); err != nil {
		return fmt.Errorf("shuffle generator: %w", err)
	}
	if err := m.drop.UnmarshalBinary(c.Dropout); err != nil {
		return fmt.Errorf("dropout generator: %w", err)
	}
	if c.Format == checkpointFormat1 {
		for i := range c.History {
			c.History[i].Epoch++
		}
	}
	m.steps, st.History, st.Order = c.Steps, c.History, c.Order
	st.Best, st.SinceBest, st.Stopped = c.BestEpoch, c.SinceBest, c.Stopped
	m.best = ck.best
	return nil
}

// isPermutation reports whether order holds each of the rows once (rows:
// ascending, the examples trained on, all but a holdout), as it must to
// index the data when training goes on.
func isPermutation(order, rows []int32) bool {
	if len(order) != len(rows) {
		return false
	}
	seen := make([]bool, len(rows))
	for _, r := range order {
		i, ok := slices.BinarySearch(rows, r)
		if !ok || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

// writeCheckpoint writes ck to path atomically.
func writeCheckpoint(path string, ck *ftCheckpoint) error {
	all := &head.Weights{Classes: ck.weights.Classes, Tensors: map[string]head.Tensor{}}
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
		return fmt.Errorf("finetune: checkpoint %s: %w", path, err)
	}
	// The header records the sha256 of the tensors after it: encode once
	// into a hash to learn it, then for real; the hex digest has the
	// placeholder's length, so both encodings have the same header size.
	meta := map[string]string{checkpointMeta: string(state), checkpointSum: strings.Repeat("0", sha256.Size*2)}
	h := &bodyHash{h: sha256.New()}
	if err := all.Encode(h, meta); err != nil {
		return fmt.Errorf("finetune: checkpoint %s: %w", path, err)
	}
	meta[checkpointSum] = hex.EncodeToString(h.h.Sum(nil))
	if err := fsutil.WriteWith(path, 0o644, func(w io.Writer) error {
		return all.Encode(w, meta)
	}); err != nil {
		return fmt.Errorf("finetune: checkpoint: %w", err)
	}
	return nil
}

// ErrChanged is wrapped by the error about a checkpoint whose tensors no
// longer have the sha256 its header recorded: changed or damaged since it
// was written, it cannot be resumed. Checkpoints of a tlearn before the
// record are read unchecked.
var ErrChanged = errors.New("finetune: checkpoint changed since it was written")

// ErrOtherRun is wrapped by the error about a checkpoint that a run with
// other settings or data wrote: it cannot be resumed by this one.
var ErrOtherRun = errors.New("finetune: checkpoint of a run with other settings or data")

// otherRunError keeps the message that restore gave before ErrOtherRun,
// under the checkpoint's path that begin adds.
type otherRunError struct{}

func (otherRunError) Error() string {
	return "it was written by a run with other settings or data; delete it to start over, or use another run directory"
}

func (otherRunError) Unwrap() error { return ErrOtherRun }

// bodyHash hashes what is written to it after the safetensors header (8
// bytes of length, then the header).
type bodyHash struct {
	h    hash.Hash
	pre  []byte
	skip int64 // header bytes still to skip; valid once pre holds 8 bytes
}

func (b *bodyHash) Write(p []byte) (int, error) {
	n := len(p)
	if len(b.pre) < 8 {
		k := min(8-len(b.pre), len(p))
		b.pre, p = append(b.pre, p[:k]...), p[k:]
		if len(b.pre) == 8 {
			b.skip = int64(binary.LittleEndian.Uint64(b.pre))
		}
	}
	if k := min(b.skip, int64(len(p))); k > 0 {
		b.skip, p = b.skip-k, p[k:]
	}
	b.h.Write(p)
	return n, nil
}

// readCheckpoint reads a checkpoint; a missing file gives an error
// wrapping os.ErrNotExist.
func readCheckpoint(path string) (*ftCheckpoint, error) {
	b, err := fsutil.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("finetune: %w", err)
	}
	ck, err := parseCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("finetune: checkpoint %s: %w", path, err)
	}
	return ck, nil
}

// parseCheckpoint decodes a checkpoint held in memory.
func parseCheckpoint(b []byte) (*ftCheckpoint, error) {
	all, err := head.ParseWeights(b)
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
	if want, ok := hdr.Meta[checkpointSum]; ok {
		sum := sha256.Sum256(b[8+n:])
		if got := hex.EncodeToString(sum[:]); got != want {
			return nil, fmt.Errorf("%w: its tensors have sha256 %.12s…, its header records %.12s…", ErrChanged, got, want)
		}
	}
	raw, ok := hdr.Meta[checkpointMeta]
	if !ok {
		return nil, fmt.Errorf("no %s metadata (a weights file, not a fine-tuning checkpoint)", checkpointMeta)
	}
	ck := &ftCheckpoint{
		weights: &head.Weights{Classes: all.Classes, Tensors: map[string]head.Tensor{}},
		moments: map[string]head.Tensor{},
	}
	if err := json.Unmarshal([]byte(raw), &ck.state); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	for name, t := range all.Tensors {
		switch {
		case strings.HasPrefix(name, checkpointBestPfx):
			if ck.best == nil {
				ck.best = &head.Weights{Classes: all.Classes, Tensors: map[string]head.Tensor{}}
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
