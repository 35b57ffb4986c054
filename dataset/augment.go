package dataset

import (
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// MaxViews bounds the views per image of a Loader (LoaderSettings.Views):
// each view costs one backbone run and its share of the cache.
const MaxViews = 64

// Defaults of the augmentations' parameters (ParseAugment).
const (
	// DefaultCropScale is the smallest area fraction of a random crop:
	// milder than torchvision's 0.08, which leaves too little of a small
	// photo (a 32×32 CIFAR image keeps at least 22×22 pixels here).
	DefaultCropScale = 0.5
	// DefaultJitter is the largest relative change of brightness and of
	// contrast.
	DefaultJitter = 0.2
)

// Augment is the set of random augmentations of the views 1..K-1 of an
// image (view 0 is always the plain image). The zero value augments
// nothing.
type Augment struct {
	// Flip mirrors the image left to right with probability 1/2.
	Flip bool
	// Crop, when above 0, cuts a random rectangle out of the image before
	// it is resized to the model's side (torchvision's RandomResizedCrop):
	// its area is a uniform fraction in [Crop, 1] of the image's, its aspect
	// ratio log-uniform in [3/4, 4/3], its place uniform.
	Crop float64
	// Jitter, when above 0, multiplies brightness by a uniform factor in
	// [1-Jitter, 1+Jitter] and scales contrast around the image's mean
	// grey level by another (torchvision's ColorJitter, without its
	// saturation and hue).
	Jitter float64
}

// ErrAugment is wrapped by ParseAugment's errors.
var ErrAugment = errors.New("dataset: invalid augmentation")

// AugmentNames lists the augmentations ParseAugment accepts, in the order
// String writes them.
var AugmentNames = []string{"flip", "crop", "jitter"}

// ParseAugment reads a comma-separated list of augmentations: flip,
// crop[=MINSCALE] (0 < MINSCALE < 1; default DefaultCropScale) and
// jitter[=AMOUNT] (0 < AMOUNT < 1; default DefaultJitter), each at most
// once, e.g. "flip,crop=0.6". "" is no augmentation.
func ParseAugment(s string) (Augment, error) {
	var a Augment
	if strings.TrimSpace(s) == "" {
		return a, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, arg, hasArg := strings.Cut(strings.TrimSpace(part), "=")
		if name == "" {
			return Augment{}, fmt.Errorf("%w: empty item in %q", ErrAugment, s)
		}
		if seen[name] {
			return Augment{}, fmt.Errorf("%w: %s given twice in %q", ErrAugment, name, s)
		}
		seen[name] = true
		frac := func(def float64) (float64, error) {
			if !hasArg {
				return def, nil
			}
			v, err := strconv.ParseFloat(arg, 64)
			if err != nil || !(v > 0 && v < 1) {
				return 0, fmt.Errorf("%w: %s=%s, want a number between 0 and 1 (exclusive)", ErrAugment, name, arg)
			}
			return v, nil
		}
		var err error
		switch name {
		case "flip":
			if hasArg {
				return Augment{}, fmt.Errorf("%w: flip takes no value (got flip=%s)", ErrAugment, arg)
			}
			a.Flip = true
		case "crop":
			a.Crop, err = frac(DefaultCropScale)
		case "jitter":
			a.Jitter, err = frac(DefaultJitter)
		default:
			return Augment{}, fmt.Errorf("%w: unknown augmentation %q in %q, want a list of %s", ErrAugment, name, s, strings.Join(AugmentNames, ", "))
		}
		if err != nil {
			return Augment{}, err
		}
	}
	return a, nil
}

// IsZero reports whether a augments nothing.
func (a Augment) IsZero() bool { return a == Augment{} }

// String is the canonical form that ParseAugment reads back, parameters
// always written out: "flip,crop=0.5,jitter=0.2"; "" for no augmentation.
// A cache records it, and its fingerprint hashes it.
func (a Augment) String() string {
	var parts []string
	if a.Flip {
		parts = append(parts, "flip")
	}
	if a.Crop > 0 {
		parts = append(parts, "crop="+strconv.FormatFloat(a.Crop, 'g', -1, 64))
	}
	if a.Jitter > 0 {
		parts = append(parts, "jitter="+strconv.FormatFloat(a.Jitter, 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

// Validate checks a built by hand.
func (a Augment) Validate() error {
	if !(a.Crop >= 0 && a.Crop < 1) || !(a.Jitter >= 0 && a.Jitter < 1) {
		return fmt.Errorf("%w: crop %v, jitter %v, want each in [0, 1)", ErrAugment, a.Crop, a.Jitter)
	}
	return nil
}

// View is what one view does to one image, as drawn by Augment.Draw.
type View struct {
	// Crop is the rectangle of the image kept, within its bounds.
	Crop image.Rectangle
	Flip bool
	// Brightness and Contrast are factors; 1 and 1 change nothing.
	Brightness, Contrast float64
}

// Draw returns view v of the image whose key (its path relative to the
// dataset folder) is key and whose bounds are b: a pure function of (seed,
// key, v, b), so that a view is the same whatever the batch, worker count
// or resume point. View 0 is the plain image (the whole of b, no change).
func (a Augment) Draw(seed uint64, key string, v int, b image.Rectangle) View {
	vw := View{Crop: b, Brightness: 1, Contrast: 1}
	if v == 0 {
		return vw
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	// Mixing v in with an odd multiplier keeps the streams of one image's
	// views apart; PCG's second word only needs to differ.
	rng := rand.New(rand.NewPCG(seed, h.Sum64()^(uint64(v)*0x9e3779b97f4a7c15)))
	if a.Crop > 0 {
		vw.Crop = randomCrop(rng, b, a.Crop)
	}
	if a.Flip {
		vw.Flip = rng.IntN(2) == 1
	}
	if a.Jitter > 0 {
		vw.Brightness = 1 + a.Jitter*(2*rng.Float64()-1)
		vw.Contrast = 1 + a.Jitter*(2*rng.Float64()-1)
	}
	return vw
}

// randomCrop is torchvision's RandomResizedCrop rectangle: ten tries at an
// area fraction in [minScale, 1] and a log-uniform aspect ratio in
// [3/4, 4/3] that fits, else the whole image.
func randomCrop(rng *rand.Rand, b image.Rectangle, minScale float64) image.Rectangle {
	w, h := b.Dx(), b.Dy()
	area := float64(w * h)
	lo, hi := math.Log(3.0/4), math.Log(4.0/3)
	for range 10 {
		target := area * (minScale + (1-minScale)*rng.Float64())
		ratio := math.Exp(lo + (hi-lo)*rng.Float64())
		cw := int(math.Round(math.Sqrt(target * ratio)))
		ch := int(math.Round(math.Sqrt(target / ratio)))
		if cw < 1 || ch < 1 || cw > w || ch > h {
			continue
		}
		x := b.Min.X + rng.IntN(w-cw+1)
		y := b.Min.Y + rng.IntN(h-ch+1)
		return image.Rect(x, y, x+cw, y+ch)
	}
	return b
}

// subImager is what the decoded image types (*image.RGBA, *image.Gray, and
// the other standard ones) offer to crop without copying.
type subImager interface {
	SubImage(r image.Rectangle) image.Image
}

// ApplyView returns img with vw applied and resized to size×size: cropped
// first, then resized, then flipped and jittered on the resized pixels
// (written into scratch, grown as needed, which the result may share). A
// plain view (View 0) gives exactly Resize(img, size, interp).
func ApplyView(img image.Image, vw View, size int, interp Interpolation, scratch *[]uint8) image.Image {
	if vw.Crop != img.Bounds() {
		if s, ok := img.(subImager); ok {
			img = s.SubImage(vw.Crop)
		}
	}
	img = Resize(img, size, interp)
	if !vw.Flip && vw.Brightness == 1 && vw.Contrast == 1 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if cap(*scratch) < 4*w*h {
		*scratch = make([]uint8, 4*w*h)
	}
	out := &image.RGBA{Pix: (*scratch)[:4*w*h], Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}
	copyRGB(out, img)
	if vw.Flip {
		for y := range h {
			row := out.Pix[y*out.Stride : y*out.Stride+4*w]
			for i, j := 0, 4*(w-1); i < j; i, j = i+4, j-4 {
				row[i], row[i+1], row[i+2], row[j], row[j+1], row[j+2] = row[j], row[j+1], row[j+2], row[i], row[i+1], row[i+2]
			}
		}
	}
	if vw.Brightness != 1 || vw.Contrast != 1 {
		jitter(out, vw.Brightness, vw.Contrast)
	}
	return out
}

// copyRGB writes img's pixels into out (same size, origin at 0,0), opaque.
func copyRGB(out *image.RGBA, img image.Image) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := img.(type) {
	case *image.RGBA:
		for y := range h {
			copy(out.Pix[y*out.Stride:y*out.Stride+4*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
		}
		return
	case *image.Gray:
		for y := range h {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[y*out.Stride:]
			for x := range w {
				v := src[x]
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = v, v, v, 255
			}
		}
		return
	}
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			o := y*out.Stride + 4*x
			out.Pix[o], out.Pix[o+1], out.Pix[o+2], out.Pix[o+3] = uint8(r>>8), uint8(g>>8), uint8(bl>>8), 255
		}
	}
}

// jitter scales brightness, then contrast around the mean grey level (ITU-R
// 601 luma, as PIL's ImageEnhance.Contrast), rounding and clamping to 0..255.
func jitter(m *image.RGBA, brightness, contrast float64) {
	var sum float64
	n := 0
	for i := 0; i+3 < len(m.Pix); i += 4 {
		sum += 0.299*float64(m.Pix[i]) + 0.587*float64(m.Pix[i+1]) + 0.114*float64(m.Pix[i+2])
		n++
	}
	mean := brightness * sum / float64(max(n, 1))
	var lut [256]uint8
	for v := range lut {
		x := contrast*(brightness*float64(v)-mean) + mean
		lut[v] = uint8(math.Round(min(255, max(0, x))))
	}
	for i := 0; i+3 < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2] = lut[m.Pix[i]], lut[m.Pix[i+1]], lut[m.Pix[i+2]]
	}
}
