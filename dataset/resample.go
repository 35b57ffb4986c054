package dataset

import (
	"image"
	"image/draw"
	"math"
	"sync"
)

// This file is tlearn's separable resampler for the smooth filters
// (bilinear, bicubic, lanczos3). It reproduces Pillow's Image.resize
// (libImaging/Resample.c, Pillow 9.4): pixel centres at i+0.5, the
// filter's support widened by the scale factor when downsampling (the
// antialiasing that torchvision's antialias=True also copies), taps outside
// the image dropped and the rest renormalised, 22-bit fixed-point weights,
// a horizontal pass into 8-bit rows, then a vertical pass, each rounded.
// github.com/nfnt/resize, which tlearn used before, widens the support too
// but quantises weights to 8 bits and truncates every sum (outputs a level
// or two darker than Pillow's) and repeats edge pixels instead of
// renormalising (BENCHMARKS.md, "Resize filter (issue 11)", has the
// measured differences). Nearest stays with nfnt: caches and classifiers
// made with it depend on its exact pixels.

// resampleFilter is a kernel of Pillow's, defined on [-support, support].
type resampleFilter struct {
	support float64
	kernel  func(x float64) float64
}

var (
	bilinearFilter = resampleFilter{1, func(x float64) float64 {
		x = math.Abs(x)
		if x < 1 {
			return 1 - x
		}
		return 0
	}}
	// bicubicFilter is Keys' cubic with a = -0.5, as Pillow (and
	// torchvision's antialiased bicubic) use.
	bicubicFilter = resampleFilter{2, func(x float64) float64 {
		const a = -0.5
		x = math.Abs(x)
		switch {
		case x < 1:
			return ((a+2)*x-(a+3))*x*x + 1
		case x < 2:
			return (((x-5)*x+8)*x - 4) * a
		}
		return 0
	}}
	lanczos3Filter = resampleFilter{3, func(x float64) float64 {
		if -3 <= x && x < 3 {
			return sinc(x) * sinc(x/3)
		}
		return 0
	}}
)

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

// precisionBits is Pillow's fixed-point precision of 8-bit resampling: a
// sum of 255 × weights (negative lobes included) fits an int32.
const precisionBits = 32 - 8 - 2

// axisWeights map one axis of in source pixels to out pixels: output i
// reads the count[i] source pixels from start[i] with weights
// k[i*ksize : i*ksize+count[i]], fixed point with precisionBits.
type axisWeights struct {
	ksize        int
	start, count []int
	k            []int32
}

// newAxisWeights is Pillow's precompute_coeffs and normalize_coeffs_8bpc.
func newAxisWeights(in, out int, f resampleFilter) *axisWeights {
	scale := float64(in) / float64(out)
	filterScale := max(scale, 1)
	support := f.support * filterScale
	ksize := int(math.Ceil(support))*2 + 1
	w := &axisWeights{ksize: ksize, start: make([]int, out), count: make([]int, out), k: make([]int32, out*ksize)}
	kk := make([]float64, ksize)
	ss := 1 / filterScale
	for i := range out {
		center := (float64(i) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		n := hi - lo
		var sum float64
		for j := range n {
			kk[j] = f.kernel((float64(j+lo) - center + 0.5) * ss)
			sum += kk[j]
		}
		row := w.k[i*ksize : i*ksize+n]
		for j := range row {
			v := kk[j]
			if sum != 0 {
				v /= sum
			}
			if v < 0 {
				row[j] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				row[j] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		w.start[i], w.count[i] = lo, n
	}
	return w
}

// clip8 is Pillow's: a fixed-point sum to a pixel level.
func clip8(v int32) uint8 {
	switch {
	case v >= 255<<precisionBits:
		return 255
	case v <= 0:
		return 0
	}
	return uint8(v >> precisionBits)
}

// weightsKey names one axis' weights in weightsCache.
type weightsKey struct {
	in, out int
	filter  Interpolation
}

// weightsCache keeps the weights of the last axes resized: a dataset has few
// distinct image sizes (CIFAR's are all 32), so every image after the first
// reuses them. Bounded because photos can come in many sizes.
var weightsCache struct {
	sync.Mutex
	m map[weightsKey]*axisWeights
}

const maxCachedWeights = 64

func cachedWeights(in, out int, interp Interpolation, f resampleFilter) *axisWeights {
	key := weightsKey{in, out, interp}
	weightsCache.Lock()
	w := weightsCache.m[key]
	weightsCache.Unlock()
	if w != nil {
		return w
	}
	w = newAxisWeights(in, out, f)
	weightsCache.Lock()
	if weightsCache.m == nil || len(weightsCache.m) >= maxCachedWeights {
		weightsCache.m = make(map[weightsKey]*axisWeights)
	}
	weightsCache.m[key] = w
	weightsCache.Unlock()
	return w
}

// resample scales img to w×h with f, as Pillow's Image.resize does.
// *image.Gray stays gray; every other type comes back as *image.RGBA
// (alpha, premultiplied as image.RGBA keeps it, is filtered like the other
// channels).
func resample(img image.Image, w, h int, interp Interpolation, f resampleFilter) image.Image {
	var pix []uint8
	var stride, channels int
	b := img.Bounds()
	if b.Empty() { // nothing to filter: black
		if _, ok := img.(*image.Gray); ok {
			return image.NewGray(image.Rect(0, 0, w, h))
		}
		return image.NewRGBA(image.Rect(0, 0, w, h))
	}
	switch m := img.(type) {
	case *image.Gray:
		pix, stride, channels = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, 1
	case *image.RGBA:
		pix, stride, channels = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, 4
	default:
		rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
		pix, stride, channels = rgba.Pix, rgba.Stride, 4
	}
	src := plane{pix: pix, stride: stride, w: b.Dx(), h: b.Dy()}
	ww := cachedWeights(src.w, w, interp, f)
	hw := cachedWeights(src.h, h, interp, f)

	if src.w != w {
		// Only the source rows that the vertical pass reads.
		first := hw.start[0]
		last := hw.start[h-1] + hw.count[h-1]
		if src.h == h {
			first, last = 0, h
		}
		tmp := plane{pix: make([]uint8, w*channels*(last-first)), stride: w * channels, w: w, h: last - first}
		horizontal(tmp, src.rows(first, last), ww, channels)
		src = tmp
		if src.h != h {
			hw = shifted(hw, first)
		}
	}
	out := plane{pix: make([]uint8, w*channels*h), stride: w * channels, w: w, h: h}
	if src.h != h {
		vertical(out, src, hw, channels)
	} else {
		for y := range h {
			copy(out.pix[y*out.stride:(y+1)*out.stride], src.pix[y*src.stride:y*src.stride+w*channels])
		}
	}
	r := image.Rect(0, 0, w, h)
	if channels == 1 {
		return &image.Gray{Pix: out.pix, Stride: out.stride, Rect: r}
	}
	return &image.RGBA{Pix: out.pix, Stride: out.stride, Rect: r}
}

// plane is a w×h block of interleaved 8-bit pixels.
type plane struct {
	pix    []uint8
	stride int
	w, h   int
}

func (p plane) rows(first, last int) plane {
	return plane{pix: p.pix[first*p.stride:], stride: p.stride, w: p.w, h: last - first}
}

// shifted returns w with its source indices moved down by first (the
// vertical pass reads the horizontal pass' rows first.. as 0..).
func shifted(w *axisWeights, first int) *axisWeights {
	if first == 0 {
		return w
	}
	s := *w
	s.start = make([]int, len(w.start))
	for i, v := range w.start {
		s.start[i] = v - first
	}
	return &s
}

// horizontal resamples every row of src into dst (same rows, dst.w
// columns).
func horizontal(dst, src plane, w *axisWeights, channels int) {
	const half = 1 << (precisionBits - 1)
	for y := range src.h {
		in := src.pix[y*src.stride:]
		out := dst.pix[y*dst.stride : y*dst.stride+dst.w*channels]
		for x := range dst.w {
			k := w.k[x*w.ksize : x*w.ksize+w.count[x]]
			p := in[w.start[x]*channels:]
			if channels == 1 {
				s := int32(half)
				for j, c := range k {
					s += int32(p[j]) * c
				}
				out[x] = clip8(s)
				continue
			}
			s0, s1, s2, s3 := int32(half), int32(half), int32(half), int32(half)
			p = p[:4*len(k)]
			for j, c := range k {
				q := p[4*j : 4*j+4 : 4*j+4]
				s0 += int32(q[0]) * c
				s1 += int32(q[1]) * c
				s2 += int32(q[2]) * c
				s3 += int32(q[3]) * c
			}
			o := out[4*x : 4*x+4 : 4*x+4]
			o[0], o[1], o[2], o[3] = clip8(s0), clip8(s1), clip8(s2), clip8(s3)
		}
	}
}

// vertical resamples src's rows into dst's (same width): each output row is
// a weighted sum of whole source rows, accumulated row by row.
func vertical(dst, src plane, w *axisWeights, channels int) {
	const half = 1 << (precisionBits - 1)
	n := dst.w * channels
	acc := make([]int32, n)
	for y := range dst.h {
		for i := range acc {
			acc[i] = half
		}
		k := w.k[y*w.ksize : y*w.ksize+w.count[y]]
		for j, c := range k {
			row := src.pix[(w.start[y]+j)*src.stride:]
			row = row[:len(acc)]
			for i, v := range row {
				acc[i] += int32(v) * c
			}
		}
		out := dst.pix[y*dst.stride : y*dst.stride+n]
		for i, v := range acc {
			out[i] = clip8(v)
		}
	}
}
