package dataset

import (
	"fmt"
	"image"
	"image/color"
)

// ChannelOrder is the order of the colour channels a backbone expects.
type ChannelOrder string

// Layout is the memory layout of an image batch tensor.
type Layout string

const (
	RGB ChannelOrder = "RGB"
	BGR ChannelOrder = "BGR"

	NCHW Layout = "NCHW"
	NHWC Layout = "NHWC"
)

// Preprocessing turns 0..255 pixels into a backbone's input values:
// v = (pixel*Scale - Mean[c]) / Std[c], with channels in ChannelOrder and the
// batch in Layout. Mean and Std are given in ChannelOrder's order.
type Preprocessing struct {
	ChannelOrder ChannelOrder `json:"channel_order"`
	Layout       Layout       `json:"layout"`
	Scale        float32      `json:"scale"`
	Mean         [3]float32   `json:"mean"`
	Std          [3]float32   `json:"std"`
}

// TorchvisionPreprocessing is torchvision's (and the ONNX Model Zoo VGG16's):
// RGB, x/255, ImageNet mean and std, NCHW.
var TorchvisionPreprocessing = Preprocessing{
	ChannelOrder: RGB, Layout: NCHW, Scale: 1.0 / 255,
	Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225},
}

// CaffePreprocessing is Keras' applications.vgg16.preprocess_input ("caffe"
// mode): BGR, 0..255 minus the ImageNet mean in BGR order, no scaling, NHWC.
var CaffePreprocessing = Preprocessing{
	ChannelOrder: BGR, Layout: NHWC, Scale: 1,
	Mean: [3]float32{103.939, 116.779, 123.68}, Std: [3]float32{1, 1, 1},
}

// Validate reports a malformed Preprocessing (e.g. from a hand-edited spec.json).
func (p Preprocessing) Validate() error {
	if p.ChannelOrder != RGB && p.ChannelOrder != BGR {
		return fmt.Errorf("dataset: preprocessing: channel order %q, want RGB or BGR", p.ChannelOrder)
	}
	if p.Layout != NCHW && p.Layout != NHWC {
		return fmt.Errorf("dataset: preprocessing: layout %q, want NCHW or NHWC", p.Layout)
	}
	if p.Scale <= 0 {
		return fmt.Errorf("dataset: preprocessing: scale %v, want > 0", p.Scale)
	}
	for i, s := range p.Std {
		if s <= 0 {
			return fmt.Errorf("dataset: preprocessing: std[%d] = %v, want > 0", i, s)
		}
	}
	return nil
}

// Preprocess writes img as image i of the batch dst: dst holds images of
// 3×H×W values (H×W = img's size) in p.Layout, so image i starts at
// i*3*H*W. Pixels become (pixel*Scale - Mean[c]) / Std[c] with channels in
// p.ChannelOrder; alpha is ignored (straight colour kept, see DecodeFile).
// Fast paths walk the pixels of *image.RGBA, *image.NRGBA, *image.Gray and
// *image.YCbCr; other types go through At. It allocates nothing, and panics
// when dst is too short (a shape mismatch is a programming error) or p is
// invalid.
func Preprocess(dst []float32, i int, img image.Image, p Preprocessing) {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	plane := w * h
	if i < 0 || len(dst) < (i+1)*3*plane {
		panic(fmt.Sprintf("dataset: preprocess image %d of %d×%d into %d values", i, w, h, len(dst)))
	}
	var lut [3][256]float32
	px := newPixelWriter(dst[i*3*plane:(i+1)*3*plane], plane, p, &lut)
	switch m := img.(type) {
	case *image.RGBA:
		px.fromRGBA(m)
	case *image.NRGBA:
		px.fromNRGBA(m)
	case *image.Gray:
		px.fromGray(m)
	case *image.YCbCr:
		px.fromYCbCr(m)
	default:
		px.fromAny(img)
	}
}

// pixelWriter places the 8-bit R, G and B values of one image into its
// part of a batch tensor, through one table per channel.
type pixelWriter struct {
	// r, g and b start at the output value of each source channel's first
	// pixel; step is the distance between two pixels' values.
	r, g, b    []float32
	step       int
	lr, lg, lb *[256]float32 // the tables applied to R, G and B
}

// newPixelWriter fills lut (the caller's, so that nothing is allocated)
// and lays out the channels of out, one image of plane pixels.
func newPixelWriter(out []float32, plane int, p Preprocessing, lut *[3][256]float32) pixelWriter {
	// One table per output channel, indexed by the 8-bit source value:
	// exact (computed in float64 once) and cheaper than arithmetic per pixel.
	src := [3]int{0, 1, 2} // output channel k reads source channel src[k] of R,G,B
	if p.ChannelOrder == BGR {
		src = [3]int{2, 1, 0}
	}
	for k := range lut {
		scale, mean, std := float64(p.Scale), float64(p.Mean[k]), float64(p.Std[k])
		for v := range lut[k] {
			lut[k][v] = float32((float64(v)*scale - mean) / std)
		}
	}
	// rgb[c] is the table applied to source channel c (R, G or B), and
	// off[c] the offset of its value for the first pixel.
	var rgb [3]*[256]float32
	var off [3]int
	step := 1
	if p.Layout == NHWC {
		step = 3
	}
	for k := range src {
		rgb[src[k]] = &lut[k]
		if p.Layout == NCHW {
			off[src[k]] = k * plane
		} else {
			off[src[k]] = k
		}
	}
	return pixelWriter{r: out[off[0]:], g: out[off[1]:], b: out[off[2]:], step: step, lr: rgb[0], lg: rgb[1], lb: rgb[2]}
}

func (px *pixelWriter) fromRGBA(m *image.RGBA) {
	b := m.Bounds()
	w, step := b.Dx(), px.step
	r, g, bl, lr, lg, lb := px.r, px.g, px.b, px.lr, px.lg, px.lb
	for y := 0; y < b.Dy(); y++ {
		row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
		o := y * w * step
		for x := 0; x < 4*w; x += 4 {
			cr, cg, cb := row[x], row[x+1], row[x+2]
			if a := row[x+3]; a != 0xff {
				cr, cg, cb = unpremultiply(cr, cg, cb, a)
			}
			r[o], g[o], bl[o] = lr[cr], lg[cg], lb[cb]
			o += step
		}
	}
}

func (px *pixelWriter) fromNRGBA(m *image.NRGBA) {
	b := m.Bounds()
	w, step := b.Dx(), px.step
	r, g, bl, lr, lg, lb := px.r, px.g, px.b, px.lr, px.lg, px.lb
	for y := 0; y < b.Dy(); y++ {
		row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
		o := y * w * step
		for x := 0; x < 4*w; x += 4 {
			r[o], g[o], bl[o] = lr[row[x]], lg[row[x+1]], lb[row[x+2]]
			o += step
		}
	}
}

func (px *pixelWriter) fromGray(m *image.Gray) {
	b := m.Bounds()
	w, step := b.Dx(), px.step
	r, g, bl, lr, lg, lb := px.r, px.g, px.b, px.lr, px.lg, px.lb
	for y := 0; y < b.Dy(); y++ {
		row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
		o := y * w * step
		for _, v := range row {
			r[o], g[o], bl[o] = lr[v], lg[v], lb[v]
			o += step
		}
	}
}

func (px *pixelWriter) fromYCbCr(m *image.YCbCr) {
	b := m.Bounds()
	w, step := b.Dx(), px.step
	r, g, bl, lr, lg, lb := px.r, px.g, px.b, px.lr, px.lg, px.lb
	for y := 0; y < b.Dy(); y++ {
		o := y * w * step
		for x := 0; x < w; x++ {
			yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
			cr, cg, cb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			r[o], g[o], bl[o] = lr[cr], lg[cg], lb[cb]
			o += step
		}
	}
}

func (px *pixelWriter) fromAny(img image.Image) {
	b := img.Bounds()
	w, step := b.Dx(), px.step
	r, g, bl, lr, lg, lb := px.r, px.g, px.b, px.lr, px.lg, px.lb
	for y := 0; y < b.Dy(); y++ {
		o := y * w * step
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			r[o], g[o], bl[o] = lr[c.R], lg[c.G], lb[c.B]
			o += step
		}
	}
}
