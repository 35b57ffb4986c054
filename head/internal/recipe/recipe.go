package recipe

import (
	"math"
	"math/rand/v2"
)

// Streams of the seeded PCG generators (the seed is Settings.Seed), so
// that initialisation, shuffling and dropout do not depend on each other's
// consumption.
const (
	StreamInit    = 0x696e6974 // "init"
	StreamShuffle = 0x73687566 // "shuf"
	StreamDropout = 0x64726f70 // "drop"
)

// LogSumExp returns log Σ exp(z) computed from the maximum, the index of
// the first maximum and Σ z.
func LogSumExp(z []float32) (lse float64, arg int, sum float64) {
	mx := z[0]
	for j, v := range z {
		if v > mx {
			mx, arg = v, j
		}
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - float64(mx))
		sum += float64(v)
	}
	return float64(mx) + math.Log(s), arg, sum
}

// CrossEntropy is the loss of the logits z of one example of class y
// against the target (1-smoothing)·onehot(y) + smoothing/K, computed as
// logsumexp(z) − Σ t_j z_j (t sums to 1), and the index of the highest
// logit.
func CrossEntropy(z []float32, y int, smoothing float64) (loss float64, arg int) {
	lse, arg, sum := LogSumExp(z)
	u := smoothing / float64(len(z))
	return lse - u*sum - (1-smoothing)*float64(z[y]), arg
}

// BalancedWeights gives class c the weight N/(K·n_c), scikit-learn's
// "balanced", from the number of examples of each class; classes without
// examples get 0 (they never occur in the loss anyway).
func BalancedWeights(counts []int) []float64 {
	n := 0
	for _, c := range counts {
		n += c
	}
	w := make([]float64, len(counts))
	for i, c := range counts {
		if c > 0 {
			w[i] = float64(n) / float64(len(counts)*c)
		}
	}
	return w
}

// Dropout draws inverted-dropout masks from a seeded generator: every unit
// consumes 32 random bits, two units per draw, in the order of the hidden
// activations, whether Apply or Mask draws them.
type Dropout struct {
	src   *rand.PCG
	thr   uint32  // a unit is dropped when its 32 random bits are below thr
	scale float32 // 1/(1-rate)
}

// NewDropout drops units at the given rate in [0, 1), from the dropout
// stream of seed.
func NewDropout(rate float64, seed uint64) *Dropout {
	return &Dropout{
		src:   rand.NewPCG(seed, StreamDropout),
		thr:   uint32(min(math.Round(rate*(1<<32)), math.MaxUint32)),
		scale: float32(1 / (1 - rate)),
	}
}

// Apply applies ReLU and dropout to z in place and records each unit's
// gate (0, or the scale of a kept positive unit). Every unit consumes its
// bits whether or not it is positive, so that the masks only depend on the
// seed and the step.
func (d *Dropout) Apply(z, gate []float32) {
	gate = gate[:len(z)]
	i := 0
	for ; i+1 < len(z); i += 2 {
		r := d.src.Uint64()
		gate[i] = d.gate(z[i], uint32(r))
		gate[i+1] = d.gate(z[i+1], uint32(r>>32))
		z[i] *= gate[i]
		z[i+1] *= gate[i+1]
	}
	if i < len(z) {
		gate[i] = d.gate(z[i], uint32(d.src.Uint64()))
		z[i] *= gate[i]
	}
}

// gate is the scale when the unit is positive and its bits are at least
// the threshold, else 0. It is computed without branches: both conditions
// are random, so branches would be mispredicted half of the time.
func (d *Dropout) gate(z float32, bits uint32) float32 {
	keep := 1 - (uint64(bits)-uint64(d.thr))>>63
	// A float's bits read as int32 are positive exactly when it is above 0
	// (NaN aside); -int64 of them is then negative.
	pos := uint64(-int64(int32(math.Float32bits(z)))) >> 63
	return d.scale * float32(keep&pos)
}

// Mask draws a mask into dst (0 or 1/(1−rate) per unit) from the same
// bits, in the same order, as Apply: a fine-tuning run and a Train run
// with the same seed drop the same units.
func (d *Dropout) Mask(dst []float32) {
	for i := 0; i < len(dst); i += 2 {
		r := d.src.Uint64()
		for j, bits := range [2]uint32{uint32(r), uint32(r >> 32)} {
			if i+j >= len(dst) {
				break
			}
			if bits >= d.thr {
				dst[i+j] = d.scale
			} else {
				dst[i+j] = 0
			}
		}
	}
}

// MarshalBinary returns the generator's state.
func (d *Dropout) MarshalBinary() ([]byte, error) { return d.src.MarshalBinary() }

// UnmarshalBinary restores a state from MarshalBinary.
func (d *Dropout) UnmarshalBinary(b []byte) error { return d.src.UnmarshalBinary(b) }

// minLogProb bounds the log of a mean probability that underflowed to 0,
// so that a hopeless example adds a large finite loss, not an infinite one.
const minLogProb = -100

// MeanLogProbs writes into dst the log of the mean, over the k views in z
// (k rows of stride logits, the first nc of each used), of their softmax
// probabilities: test-time augmentation, the same in both trainers. Its
// softmax is the mean itself, so CrossEntropy and a tally take it as
// logits. acc is scratch of nc values.
func MeanLogProbs(dst []float32, z []float32, k, stride, nc int, acc []float64) {
	clear(acc[:nc])
	for v := range k {
		zv := z[v*stride : v*stride+nc]
		lse, _, _ := LogSumExp(zv)
		for j, x := range zv {
			acc[j] += math.Exp(float64(x) - lse)
		}
	}
	for j := range nc {
		dst[j] = float32(max(minLogProb, math.Log(acc[j]/float64(k))))
	}
}

// Cosine is the factor of the learning rate at optimizer step t (from 1)
// of total under cosine annealing to zero (PyTorch's CosineAnnealingLR
// with T_max = total and eta_min = 0, stepped every batch):
// ½·(1 + cos(π·(t−1)/total)). The first step takes the full rate; steps
// past total keep the last factor.
func Cosine(t, total int) float64 {
	if total < 1 {
		return 1
	}
	t = min(max(t, 1), total)
	return 0.5 * (1 + math.Cos(math.Pi*float64(t-1)/float64(total)))
}
