package head

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// ErrHoldout is wrapped by the errors about a holdout that cannot be
// carved from the training rows.
var ErrHoldout = errors.New("head: holdout")

// Sets that select the epoch (Result.SelectedOn, metrics.json's
// selected_on).
const (
	SelectedOnValidation = "val"
	SelectedOnHoldout    = "holdout"
)

// CarveHoldout splits the training rows, given by their labels y, into
// the rows to train on and the holdout, stratified as dataset.Split
// splits images: each class with rows sets aside round(fraction × its
// rows), at least one and leaving at least one, or CarveHoldout fails
// (wrapping ErrHoldout) naming every class with a single row. The choice
// within a class is a seeded shuffle (PCG) that depends only on the seed,
// the class name and the class's rows, so the carve is reproducible from
// settings.json and other classes do not change it. Both lists are in
// ascending row order; together they are every row once. fraction must be
// in (0, 1).
func CarveHoldout(y []int32, classes []string, fraction float64, seed uint64) (train, holdout []int32, err error) {
	if !(fraction > 0 && fraction < 1) {
		return nil, nil, fmt.Errorf("%w: fraction %v, want between 0 and 1", ErrHoldout, fraction)
	}
	byClass := make([][]int32, len(classes))
	for i, c := range y {
		if c < 0 || int(c) >= len(classes) {
			return nil, nil, fmt.Errorf("%w: row %d has label %d, but there are %d classes", ErrData, i, c, len(classes))
		}
		byClass[c] = append(byClass[c], int32(i))
	}
	var small []string
	for c, rows := range byClass {
		if len(rows) == 1 {
			small = append(small, fmt.Sprintf("%q (1 row)", classes[c]))
		}
	}
	if len(small) > 0 {
		return nil, nil, fmt.Errorf("%w: a class needs 2 training rows, one to train on and one to hold out; too small: %s",
			ErrHoldout, strings.Join(small, ", "))
	}
	for c, rows := range byClass {
		n := len(rows)
		if n == 0 {
			continue
		}
		nh := min(max(int(math.Round(fraction*float64(n))), 1), n-1)
		h := fnv.New64a()
		h.Write([]byte(classes[c]))
		rng := rand.New(rand.NewPCG(seed, h.Sum64()))
		rng.Shuffle(n, func(a, b int) { rows[a], rows[b] = rows[b], rows[a] })
		holdout = append(holdout, rows[:nh]...)
		train = append(train, rows[nh:]...)
	}
	slices.Sort(train)
	slices.Sort(holdout)
	return train, holdout, nil
}

// Rows are the training rows of n examples labelled y under s: all of
// them and no holdout without s.Holdout, else CarveHoldout's two parts.
func (s Settings) Rows(y []int32, classes []string) (train, holdout []int32, err error) {
	if s.Holdout == 0 {
		train = make([]int32, len(y))
		for i := range train {
			train[i] = int32(i)
		}
		return train, nil, nil
	}
	return CarveHoldout(y, classes, s.Holdout, s.HoldoutSeed)
}

// SelectedOn names the set whose accuracy ranks the epochs of a run under
// s (the best epoch, the one SaveBest and EarlyStop keep) and the runs of
// a sweep: SelectedOnHoldout with a holdout, else SelectedOnValidation.
func (s Settings) SelectedOn() string {
	if s.Holdout > 0 {
		return SelectedOnHoldout
	}
	return SelectedOnValidation
}

// SelectsOnValidation reports whether a run under s keeps the weights of
// an epoch chosen on the validation set (SaveBest or EarlyStop without a
// holdout): the validation accuracy it then reports is optimistic.
func (s Settings) SelectsOnValidation() bool { return s.keepsBest() && s.Holdout == 0 }

// ClassCounts counts the examples of each of k classes among the rows of
// labels y.
func ClassCounts(y, rows []int32, k int) []int {
	c := make([]int, k)
	for _, r := range rows {
		c[y[r]]++
	}
	return c
}
