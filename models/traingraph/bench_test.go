package traingraph

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// The benchmarks below measure, under ONNX Runtime on CPU, the ways of
// computing block5's convolution and its gradients at VGG16's size
// (512 channels, 14×14 maps, batch 32) that the training graph could use,
// and the whole train step. They report GFLOP/s (2·MACs) so that the
// formulations compare directly (BENCHMARKS.md, fine-tuning, records a run).
//
//	go test ./models/traingraph -run '^$' -bench 'ConvOps|TrainStep' -benchtime 5x

const (
	benchB = 32
	benchC = 512
	benchS = 14
)

// convFlops is 2·B·h·w·C·O·9: one 3×3 convolution, its dX or its dW.
const convFlops = 2.0 * benchB * benchS * benchS * benchC * benchC * 9

type opBench struct {
	name  string
	flops float64
	build func(b *graphBuilder) // declares inputs (float32) and one output "y"
}

// benchConvOps lists the op benchmarks, in the order they run.
func benchConvOps() []opBench {
	return slices.Concat(convForwardBenches(), gemmShapeBenches(), gradTransposeBenches(),
		winogradBenches(), im2colBenches(), convDWBenches(), convDXBenches())
}

// The op benchmarks' shapes: NHWC and NCHW maps, and the rows of the
// im2col matrix.
var (
	benchNHWC = []int64{batchDim, benchS, benchS, benchC}
	benchNCHW = []int64{batchDim, benchC, benchS, benchS}
)

const benchRows = benchB * benchS * benchS

// convForwardBenches time the forward convolution: ORT's Conv, the
// im2col Gemm forms, and the Gemm alone.
func convForwardBenches() []opBench {
	f, c, rows, nchw := onnxpb.TensorProto_FLOAT, int64(benchC), int64(benchRows), benchNCHW
	return []opBench{
		{"conv_forward/ort_conv_nchw", convFlops, func(b *graphBuilder) {
			x := b.input("x", f, nchw)
			w := b.input("w", f, []int64{c, c, 3, 3})
			bias := b.input("bias", f, []int64{c})
			b.output("y", b.node("Conv", []string{x, w, bias}, nchw, onnxgraph.AttrInts("pads", 1, 1, 1, 1), onnxgraph.AttrInts("kernel_shape", 3, 3)), f)
		}},
		{"conv_forward/im2col_gather_gemm_nhwc", convFlops, gemmConvBench(false)},
		{"conv_forward/im2col_slices_gemm_nhwc", convFlops, gemmConvBench(true)},
		{"conv_forward/gemm_only", convFlops, func(b *graphBuilder) {
			x := b.input("xcol", f, []int64{rows, 9 * c})
			w := b.input("w", f, []int64{c, 9 * c})
			b.output("y", b.node("Gemm", []string{x, w}, []int64{rows, c}, onnxgraph.AttrInt("transB", 1)), f)
		}},
	}
}

// gemmConvBench builds the im2col Gemm forward convolution (NHWC), with
// the gather or the slices im2col.
func gemmConvBench(sliceIm2col bool) func(b *graphBuilder) {
	f, c := onnxpb.TensorProto_FLOAT, int64(benchC)
	return func(b *graphBuilder) {
		b.form, b.sliceIm2col = convGEMM, sliceIm2col
		x := b.input("x", f, benchNHWC)
		w := b.input("w", f, []int64{c, 3, 3, c})
		bias := b.input("bias", f, []int64{c})
		b.output("y", b.conv3x3(x, w, bias), f)
	}
}

// gemmShapeBenches time the forward Gemm in other shapes, against a square
// reference.
func gemmShapeBenches() []opBench {
	f, c, rows := onnxpb.TensorProto_FLOAT, int64(benchC), int64(benchRows)
	return []opBench{
		{"gemm_shapes/square_2048", 2 * 2048 * 2048 * 2048, func(b *graphBuilder) {
			x := b.input("a", f, []int64{2048, 2048})
			w := b.input("b", f, []int64{2048, 2048})
			b.output("y", b.node("MatMul", []string{x, w}, []int64{2048, 2048}), f)
		}},
		{"gemm_shapes/fwd_matmul_B_KxN", convFlops, func(b *graphBuilder) {
			x := b.input("xcol", f, []int64{rows, 9 * c})
			w := b.input("w", f, []int64{9 * c, c})
			b.output("y", b.node("MatMul", []string{x, w}, []int64{rows, c}), f)
		}},
		{"gemm_shapes/fwd_transposed_NxM", convFlops, func(b *graphBuilder) {
			// Yᵀ [O, rows] = W [O, 9C] · Xcolᵀ: the long dimension as N.
			x := b.input("xcol", f, []int64{rows, 9 * c})
			w := b.input("w", f, []int64{c, 9 * c})
			b.output("y", b.node("Gemm", []string{w, x}, []int64{c, rows}, onnxgraph.AttrInt("transB", 1)), f)
		}},
	}
}

// gradTransposeBenches time the layout changes of the output gradient (dY,
// and the Winograd form's dM) that the backward formulations need.
func gradTransposeBenches() []opBench {
	f, c, rows, nhwc := onnxpb.TensorProto_FLOAT, int64(benchC), int64(benchRows), benchNHWC
	return []opBench{
		{"im2col/transpose_2d_dy", 0, func(b *graphBuilder) {
			dy := b.input("dy", f, []int64{rows, c})
			b.output("y", b.node("Transpose", []string{dy}, []int64{c, rows}, onnxgraph.AttrInts("perm", 1, 0)), f)
		}},
		{"im2col/transpose_nhwc_to_cnhw", 0, func(b *graphBuilder) {
			dy := b.input("dy", f, nhwc)
			b.output("y", b.node("Transpose", []string{dy}, []int64{c, batchDim, benchS, benchS}, onnxgraph.AttrInts("perm", 3, 0, 1, 2)), f)
		}},
		{"winograd/dy_transpose_to_OR", 0, func(b *graphBuilder) {
			dy := b.input("dy", f, []int64{batchDim, 7, 2, 7, 2, c})
			b.output("y", b.node("Transpose", []string{dy}, []int64{2, 2, c, batchDim, 7, 7}, onnxgraph.AttrInts("perm", 2, 4, 5, 0, 1, 3)), f)
		}},
		{"winograd/dy_transpose_to_RO", 0, func(b *graphBuilder) {
			dy := b.input("dy", f, []int64{batchDim, 7, 2, 7, 2, c})
			b.output("y", b.node("Transpose", []string{dy}, []int64{2, 2, batchDim, 7, 7, c}, onnxgraph.AttrInts("perm", 2, 4, 0, 1, 3, 5)), f)
		}},
		{"winograd/dm_transpose_16_R_O", 0, func(b *graphBuilder) {
			dm := b.input("dm", f, []int64{16, rows / 4, c})
			b.output("y", b.node("Transpose", []string{dm}, []int64{16, c, rows / 4}, onnxgraph.AttrInts("perm", 0, 2, 1)), f)
		}},
	}
}

// winogradBenches time the Winograd form's batched Gemms and its whole
// forward convolution.
func winogradBenches() []opBench {
	f, c, rows, nhwc := onnxpb.TensorProto_FLOAT, int64(benchC), int64(benchRows), benchNHWC
	return []opBench{
		{"winograd/batched_gemm_fwd", convFlops * 4 / 9, func(b *graphBuilder) {
			v := b.input("v", f, []int64{16, rows / 4, c})
			u := b.input("u", f, []int64{16, c, c})
			b.output("y", b.node("MatMul", []string{v, u}, []int64{16, rows / 4, c}), f)
		}},
		{"winograd/batched_gemm_dw", convFlops * 4 / 9, func(b *graphBuilder) {
			dm := b.input("dmt", f, []int64{16, c, rows / 4})
			v := b.input("v", f, []int64{16, rows / 4, c})
			b.output("y", b.node("MatMul", []string{dm, v}, []int64{16, c, c}), f)
		}},
		{"winograd/conv_forward", convFlops, func(b *graphBuilder) {
			x := b.input("x", f, nhwc)
			w := b.input("w", f, []int64{3, 3, c, c})
			bias := b.input("bias", f, []int64{c})
			b.output("y", b.conv3x3(x, w, bias), f)
		}},
	}
}

// im2colBenches time building the im2col matrix and its parts.
func im2colBenches() []opBench {
	f, c, nhwc, nchw := onnxpb.TensorProto_FLOAT, int64(benchC), benchNHWC, benchNCHW
	return []opBench{
		{"im2col/gather_nhwc", 0, func(b *graphBuilder) {
			x := b.input("x", f, nhwc)
			b.output("y", b.im2col(x), f)
		}},
		{"im2col/slices_concat_nhwc", 0, func(b *graphBuilder) {
			x := b.input("x", f, nhwc)
			b.output("y", b.im2colSlices(x), f)
		}},
		{"im2col/pad_only", 0, func(b *graphBuilder) {
			x := b.input("x", f, nhwc)
			b.output("y", b.node("Pad", []string{x, b.constInts(0, 1, 1, 0, 0, 1, 1, 0)}, []int64{batchDim, benchS + 2, benchS + 2, c}), f)
		}},
		{"im2col/transpose_nchw_to_nhwc", 0, func(b *graphBuilder) {
			x := b.input("x", f, nchw)
			b.output("y", b.node("Transpose", []string{x}, nhwc, onnxgraph.AttrInts("perm", 0, 2, 3, 1)), f)
		}},
	}
}

// convDWBenches time the ways of computing the kernel gradient dW.
func convDWBenches() []opBench {
	f, c, rows, nchw := onnxpb.TensorProto_FLOAT, int64(benchC), int64(benchRows), benchNCHW
	return []opBench{
		{"conv_dw/gemm_dyT_xcol", convFlops, func(b *graphBuilder) {
			// dWᵀ [O, 9C] = dYᵀ · Xcol: the transposed operand is the small one.
			x := b.input("xcol", f, []int64{rows, 9 * c})
			dy := b.input("dy", f, []int64{rows, c})
			b.output("y", b.node("Gemm", []string{dy, x}, []int64{c, 9 * c}, onnxgraph.AttrInt("transA", 1)), f)
		}},
		{"conv_dw/matmul_dyT_given", convFlops, func(b *graphBuilder) {
			x := b.input("xcol", f, []int64{rows, 9 * c})
			dyt := b.input("dyt", f, []int64{c, rows})
			b.output("y", b.node("MatMul", []string{dyt, x}, []int64{c, 9 * c}), f)
		}},
		{"conv_dw/transpose_then_matmul", convFlops, func(b *graphBuilder) {
			x := b.input("xcol", f, []int64{rows, 9 * c})
			dy := b.input("dy", f, []int64{rows, c})
			dyt := b.node("Transpose", []string{dy}, []int64{c, rows}, onnxgraph.AttrInts("perm", 1, 0))
			b.output("y", b.node("MatMul", []string{dyt, x}, []int64{c, 9 * c}), f)
		}},
		{"conv_dw/matmul_k_split_by_image", convFlops, func(b *graphBuilder) {
			// Smaller K per product: [B,O,HW]·[B,HW,9C] summed over B.
			x := b.input("xcol", f, []int64{benchB, benchS * benchS, 9 * c})
			dyt := b.input("dyt", f, []int64{benchB, c, benchS * benchS})
			p := b.node("MatMul", []string{dyt, x}, []int64{benchB, c, 9 * c})
			b.output("y", b.node("ReduceSum", []string{p, b.constInts(0)}, []int64{c, 9 * c}, onnxgraph.AttrInt("keepdims", 0)), f)
		}},
		{"conv_dw/gemm_xcolT_dy", convFlops, func(b *graphBuilder) {
			x := b.input("xcol", f, []int64{rows, 9 * c})
			dy := b.input("dy", f, []int64{rows, c})
			b.output("y", b.node("Gemm", []string{x, dy}, []int64{9 * c, c}, onnxgraph.AttrInt("transA", 1)), f)
		}},
		{"conv_dw/conv_trick_nchw", convFlops, func(b *graphBuilder) {
			// dW as a convolution: batch and channels swapped, dY as the kernel.
			x := b.input("x", f, nchw)
			dy := b.input("dy", f, nchw)
			xt := b.node("Transpose", []string{x}, []int64{c, batchDim, benchS, benchS}, onnxgraph.AttrInts("perm", 1, 0, 2, 3))
			dyt := b.node("Transpose", []string{dy}, []int64{c, batchDim, benchS, benchS}, onnxgraph.AttrInts("perm", 1, 0, 2, 3))
			dw := b.node("Conv", []string{xt, dyt}, []int64{c, c, 3, 3}, onnxgraph.AttrInts("pads", 1, 1, 1, 1))
			b.output("y", b.node("Transpose", []string{dw}, []int64{c, c, 3, 3}, onnxgraph.AttrInts("perm", 1, 0, 2, 3)), f)
		}},
	}
}

// convDXBenches time the ways of computing the input gradient dX, and the
// Relu's gradient before it.
func convDXBenches() []opBench {
	f, c, nhwc, nchw := onnxpb.TensorProto_FLOAT, int64(benchC), benchNHWC, benchNCHW
	return []opBench{
		{"conv_dx/ort_conv_rotated_weights_nchw", convFlops, func(b *graphBuilder) {
			b.form = convHybrid
			dy := b.input("dy", f, nchw)
			w := b.input("w", f, []int64{c, c, 3, 3})
			b.output("y", b.convInputGrad(dy, w, nchw), f)
		}},
		{"conv_dx/ort_convtranspose_nchw", convFlops, func(b *graphBuilder) {
			dy := b.input("dy", f, nchw)
			w := b.input("w", f, []int64{c, c, 3, 3})
			b.output("y", b.node("ConvTranspose", []string{dy, w}, nchw, onnxgraph.AttrInts("pads", 1, 1, 1, 1), onnxgraph.AttrInts("kernel_shape", 3, 3)), f)
		}},
		{"conv_dx/im2col_gather_gemm_nhwc", convFlops, func(b *graphBuilder) {
			b.form = convGEMM
			dy := b.input("dy", f, nhwc)
			w := b.input("w", f, []int64{c, 3, 3, c})
			b.output("y", b.convInputGrad(dy, w, nhwc), f)
		}},
		{"conv_dx/ort_conv_transposed_nhwc", convFlops, func(b *graphBuilder) {
			b.form = convGEMMConvDX
			dy := b.input("dy", f, nhwc)
			w := b.input("w", f, []int64{c, 3, 3, c})
			b.output("y", b.convInputGrad(dy, w, nhwc), f)
		}},
		{"relu_grad_where", 0, func(b *graphBuilder) {
			y := b.input("y", f, nhwc)
			dy := b.input("dy", f, nhwc)
			pos := b.node("Greater", []string{y, b.constFloat(0)}, nhwc)
			b.output("out", b.node("Where", []string{pos, dy, b.constFloat(0)}, nhwc), f)
		}},
	}
}

func runOpBench(bb *testing.B, ob opBench) {
	ortlibtest.Init(bb)
	gb := newGraphBuilder("bench")
	ob.build(gb)
	rng := rand.New(rand.NewPCG(1, 1))
	var ins []ort.Value
	var names []string
	for _, vi := range gb.g.Input {
		dims := gb.shape(vi.GetName())
		n := int64(1)
		shape := make([]int64, len(dims))
		for i, d := range dims {
			if d == batchDim {
				d = benchB
			}
			shape[i] = d
			n *= d
		}
		ins = append(ins, f32Tensor(bb, randSlice(rng, int(n), 0.05), shape...))
		names = append(names, vi.GetName())
	}
	var outs []string
	for _, vo := range gb.g.Output {
		outs = append(outs, vo.GetName())
	}
	r := newORTRun(bb, gb.model("bench"), names, ins, outs)
	r.run(bb) // warm up and allocate the outputs
	bb.ResetTimer()
	for bb.Loop() {
		r.run(bb)
	}
	if ob.flops > 0 {
		bb.ReportMetric(ob.flops*float64(bb.N)/bb.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
}

func BenchmarkConvOps(b *testing.B) {
	for _, ob := range benchConvOps() {
		b.Run(ob.name, func(b *testing.B) { runOpBench(b, ob) })
	}
}

// benchTrainSpec is VGG16's block5 with the tutorial's head.
func benchTrainSpec() Spec {
	return Spec{Channels: benchC, Height: benchS, Width: benchS, Hidden: 1024, Classes: 10, Dropout: true, Optimizer: OptimizerAdam}
}

// BenchmarkTrainStep runs whole train steps (and the eval pass) at batch 32
// and reports images/s, the figure to compare with
// ../shared/peers/torch_finetune.py.
func BenchmarkTrainStep(b *testing.B) {
	for _, tc := range []struct {
		desc string
		mod  func(*Spec)
		eval bool
	}{
		{"adam", nil, false},
		{"adam_form_gemm", func(s *Spec) { s.Conv = "gemm" }, false},
		{"adam_form_gemm_conv_dx", func(s *Spec) { s.Conv = "gemm_conv_dx" }, false},
		{"adam_form_hybrid", func(s *Spec) { s.Conv = "hybrid" }, false},
		{"adam_maps_float32", func(s *Spec) { s.MapsFloat32 = true }, false},
		{"frozen_block5", func(s *Spec) { s.FreezeBlock5 = true }, false},
		{"eval", nil, true},
	} {
		b.Run(tc.desc, func(b *testing.B) {
			s := benchTrainSpec()
			if tc.mod != nil {
				tc.mod(&s)
			}
			build := TrainStep
			if tc.eval {
				build = Eval
			}
			tg, err := build(s)
			if err != nil {
				b.Fatal(err)
			}
			r := newTrainBenchRun(b, tg)
			r.run(b)
			f0, c0 := minorFaults(), cpuSeconds()
			b.ResetTimer()
			for b.Loop() {
				r.run(b)
			}
			b.ReportMetric(float64(benchB*b.N)/b.Elapsed().Seconds(), "images/s")
			b.ReportMetric(float64(minorFaults()-f0)/float64(b.N), "faults/op")
			// CPU time per image varies less than wall time on a shared
			// machine (../shared/peers can report the same for PyTorch).
			b.ReportMetric((cpuSeconds()-c0)/float64(benchB*b.N)*1e3, "cpu-ms/image")
		})
	}
}

// newTrainBenchRun makes inputs of the right shapes for a generated graph.
func newTrainBenchRun(b testing.TB, tg *Graph) *ortRun {
	ortlibtest.Init(b)
	rng := rand.New(rand.NewPCG(2, 2))
	shapes := tg.InputShapes(benchB)
	var ins []ort.Value
	for _, name := range tg.Inputs {
		dims := shapes[name]
		n := 1
		for _, d := range dims {
			n *= int(d)
		}
		var v ort.Value
		switch name {
		case MapsInput:
			vals := randSlice(rng, n, 1)
			for i := range vals {
				vals[i] = max(vals[i], 0)
			}
			if tg.Spec.MapsFloat32 {
				v = f32Tensor(b, vals, dims...)
			} else {
				v, _ = f16Tensor(b, vals, dims...)
			}
		case LabelsInput:
			vals := make([]float32, n)
			for i := range benchB {
				vals[i*tg.Spec.Classes+rng.IntN(tg.Spec.Classes)] = 1
			}
			v = f32Tensor(b, vals, dims...)
		default:
			vals := randSlice(rng, n, 0.02)
			v = f32Tensor(b, vals, dims...)
		}
		ins = append(ins, v)
	}
	return newORTRun(b, tg.Model, tg.Inputs, ins, tg.Outputs)
}

// minorFaults is the process's count of minor page faults: memory that a
// step touches for the first time (freshly mapped buffers) shows up here.
func minorFaults() int64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	n, _ := strconv.ParseInt(f[7], 10, 64) // minflt is field 10 of stat
	return n
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
