package head

import (
	"errors"
	"fmt"
	"slices"
)

// Data is a labelled set of feature vectors.
type Data struct {
	// X holds N rows of D features, row-major. It may be a read-only
	// memory map: the package never writes into it.
	X []float32
	// Y holds N labels in [0, len(Classes)).
	Y []int32
	// Classes names the labels.
	Classes []string
}

// Len is N.
func (d *Data) Len() int { return len(d.Y) }

// Dim is D, the number of features per row (0 for an empty set).
func (d *Data) Dim() int {
	if len(d.Y) == 0 {
		return 0
	}
	return len(d.X) / len(d.Y)
}

// Row returns row i of X.
func (d *Data) Row(i int) []float32 {
	dim := d.Dim()
	return d.X[i*dim : (i+1)*dim : (i+1)*dim]
}

// ErrData is wrapped by every error about inconsistent data.
var ErrData = errors.New("head: invalid data")

// Validate checks the shapes and that every label names a class.
func (d *Data) Validate() error {
	switch {
	case d == nil || len(d.Y) == 0:
		return fmt.Errorf("%w: no examples", ErrData)
	case len(d.Classes) == 0:
		return fmt.Errorf("%w: no class names", ErrData)
	case len(d.X) == 0 || len(d.X)%len(d.Y) != 0:
		return fmt.Errorf("%w: %d feature values do not make %d rows", ErrData, len(d.X), len(d.Y))
	}
	for i, y := range d.Y {
		if y < 0 || int(y) >= len(d.Classes) {
			return fmt.Errorf("%w: row %d has label %d, but there are %d classes", ErrData, i, y, len(d.Classes))
		}
	}
	return nil
}

// compatible checks that two sets can train and validate one model.
func compatible(train, val *Data) error {
	if train.Dim() != val.Dim() {
		return fmt.Errorf("%w: training features have %d values per row, validation features %d (made with different backbones?)", ErrData, train.Dim(), val.Dim())
	}
	if !slices.Equal(train.Classes, val.Classes) {
		return fmt.Errorf("%w: training classes %v differ from validation classes %v", ErrData, train.Classes, val.Classes)
	}
	return nil
}

// classCounts counts the examples of each class.
func (d *Data) classCounts() []int {
	c := make([]int, len(d.Classes))
	for _, y := range d.Y {
		c[y]++
	}
	return c
}
