package dataset

import (
	"fmt"
	"image"

	"github.com/nfnt/resize"
)

// Interpolation is the resampling filter used to bring images to the
// backbone's input size.
type Interpolation string

// The filters tlearn offers. Nearest is github.com/nfnt/resize's nearest
// neighbour, Keras' load_img default (nfnt samples pixel centres slightly
// differently from PIL, so its pixels need not match PIL's exactly; they
// are kept as they are because caches and classifiers were made with
// them). Bilinear, Bicubic and Lanczos3 are tlearn's own resampler, which
// matches Pillow's Image.resize (BILINEAR, BICUBIC, LANCZOS) within one
// level, antialiasing included when an image is downsampled.
const (
	Nearest  Interpolation = "nearest"
	Bilinear Interpolation = "bilinear"
	Bicubic  Interpolation = "bicubic"
	Lanczos3 Interpolation = "lanczos3"
)

// DefaultInterpolation is the filter of new work when none is named (the
// extract command's --interpolation default), chosen by the accuracy it
// gave on real images upsampled 32→224 (BENCHMARKS.md, "Resize filter
// (issue 11)"). It is not what "" means: an empty filter, as files
// written by older versions may hold it, is and stays Nearest
// (ParseInterpolation), and so does the zero value of the settings of
// dataset, extractor and experiment; compare, which reproduces the Keras
// tutorial, names Nearest itself.
const DefaultInterpolation = Bilinear

// Interpolations lists the accepted names.
var Interpolations = []Interpolation{Nearest, Bilinear, Bicubic, Lanczos3}

// ParseInterpolation accepts one of Interpolations; "" means Nearest, what
// a file written without a filter name meant.
func ParseInterpolation(s string) (Interpolation, error) {
	if s == "" {
		return Nearest, nil
	}
	for _, i := range Interpolations {
		if string(i) == s {
			return i, nil
		}
	}
	return "", fmt.Errorf("dataset: interpolation %q, want one of nearest, bilinear, bicubic, lanczos3", s)
}

// check reports an unknown filter.
func (i Interpolation) check() error {
	switch i {
	case Nearest, "", Bilinear, Bicubic, Lanczos3:
		return nil
	}
	return fmt.Errorf("dataset: interpolation %q, want one of nearest, bilinear, bicubic, lanczos3", string(i))
}

// Resize returns img scaled to size×size; a non-square image is stretched,
// as Keras' load_img(target_size=(size, size)) does. An image that already
// has the size is returned as is. *image.RGBA and *image.Gray stay of their
// type (what DecodeFile returns); Bilinear, Bicubic and Lanczos3 return any
// other type as *image.RGBA. It panics on an unknown Interpolation (check
// with ParseInterpolation) or size < 1.
func Resize(img image.Image, size int, interp Interpolation) image.Image {
	if size < 1 {
		panic(fmt.Sprintf("dataset: resize to %d pixels", size))
	}
	if err := interp.check(); err != nil {
		panic(err)
	}
	b := img.Bounds()
	if b.Dx() == size && b.Dy() == size {
		return img
	}
	switch interp {
	case Bilinear:
		return resample(img, size, size, interp, bilinearFilter)
	case Bicubic:
		return resample(img, size, size, interp, bicubicFilter)
	case Lanczos3:
		return resample(img, size, size, interp, lanczos3Filter)
	}
	return resize.Resize(uint(size), uint(size), img, resize.NearestNeighbor)
}
