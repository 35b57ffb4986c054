package experiment

import "errors"

// Sentinel errors; the returned errors wrap them with the details (and name
// the folder or file concerned).
var (
	// ErrSettings is wrapped by every error about invalid settings.
	ErrSettings = errors.New("experiment: invalid settings")
	// ErrNoValCache is returned by Train and Sweep when no validation
	// cache is given and the training folder holds no train/ and val/.
	ErrNoValCache = errors.New("experiment: no validation cache")
	// ErrNotVGG is returned when fine-tuning is asked of a prepared model
	// without VGG's block5 and block4_pool maps.
	ErrNotVGG = errors.New("experiment: not a VGG-shaped model")
	// ErrCacheLayout is returned by Extract when the cache folder holds a
	// single cache where a train/val pair is asked for, or the reverse.
	ErrCacheLayout = errors.New("experiment: the cache folder holds the other layout")
	// ErrModelChanged is returned by Export when the prepared model is not
	// the one the run was trained on (its extractor.onnx has another
	// sha256) and no other model was named explicitly.
	ErrModelChanged = errors.New("experiment: the prepared model changed since training")
)

// NoMapsError is returned when a fine-tuned run is given a cache without
// the block4_pool maps that its block5 reads.
type NoMapsError struct {
	Dir string // the cache
}

func (e *NoMapsError) Error() string { return "experiment: " + e.Dir + " has no block4_pool maps" }
