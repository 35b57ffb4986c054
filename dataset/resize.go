package dataset

import (
	"fmt"
	"image"

	"github.com/nfnt/resize"
)

// Interpolation is the resampling filter used to bring images to the
// backbone's input size.
type Interpolation string

// The filters of github.com/nfnt/resize that tlearn offers. Nearest is the
// default, as in Keras' load_img; nfnt samples pixel centres slightly
// differently from PIL, so resized pixels need not match PIL's exactly.
const (
	Nearest  Interpolation = "nearest"
	Bilinear Interpolation = "bilinear"
	Bicubic  Interpolation = "bicubic"
	Lanczos3 Interpolation = "lanczos3"
)

// Interpolations lists the accepted names, default first.
var Interpolations = []Interpolation{Nearest, Bilinear, Bicubic, Lanczos3}

// ParseInterpolation accepts one of Interpolations; "" means Nearest.
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

func (i Interpolation) filter() (resize.InterpolationFunction, error) {
	switch i {
	case Nearest, "":
		return resize.NearestNeighbor, nil
	case Bilinear:
		return resize.Bilinear, nil
	case Bicubic:
		return resize.Bicubic, nil
	case Lanczos3:
		return resize.Lanczos3, nil
	}
	return 0, fmt.Errorf("dataset: interpolation %q, want one of nearest, bilinear, bicubic, lanczos3", string(i))
}

// Resize returns img scaled to size×size; a non-square image is stretched,
// as Keras' load_img(target_size=(size, size)) does. An image that already
// has the size is returned as is. *image.RGBA and *image.Gray stay of their
// type (what DecodeFile returns). It panics on an unknown Interpolation
// (check with ParseInterpolation) or size < 1.
func Resize(img image.Image, size int, interp Interpolation) image.Image {
	if size < 1 {
		panic(fmt.Sprintf("dataset: resize to %d pixels", size))
	}
	f, err := interp.filter()
	if err != nil {
		panic(err)
	}
	b := img.Bounds()
	if b.Dx() == size && b.Dy() == size {
		return img
	}
	return resize.Resize(uint(size), uint(size), img, f)
}
