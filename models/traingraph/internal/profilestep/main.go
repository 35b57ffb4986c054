package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/traingraph"
)

// VGG16's block5 with the tutorial's head, at batch 32.
const (
	batch    = 32
	channels = 512
	side     = 14
)

// minMS hides the rows of less than this many milliseconds per step.
const minMS = 0.5

type options struct {
	convs     []string
	steps     int
	ortConfig string
	rt        ortlib.Options
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "profilestep:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("profilestep", flag.ContinueOnError)
	conv := fs.String("conv", "winograd", "formulations of block5's convolutions (traingraph.Spec.Conv), comma-separated")
	steps := fs.Int("steps", 3, "profiled steps after one warm-up step")
	threads := fs.Int("threads", 0, "ORT intra-op threads; 0 means one per core")
	lib := fs.String("ort-lib", "", "the ONNX Runtime library (else found as tlearn finds it)")
	cfg := fs.String("ort-config", "", "session config entries, key=value,...")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *steps < 1 {
		return fmt.Errorf("usage: profilestep [-conv LIST] [-steps N>0] [-threads N] [-ort-lib PATH] [-ort-config KV]")
	}
	if _, err := ortlib.Init(*lib); err != nil {
		return err
	}
	o := options{convs: strings.Split(*conv, ","), steps: *steps, ortConfig: *cfg,
		rt: ortlib.Options{Device: ortlib.DeviceCPU, Threads: *threads}}
	for _, c := range o.convs {
		byKey, err := profile(c, o)
		if err != nil {
			return err
		}
		report(out, c, byKey)
	}
	return nil
}

// profile runs o.steps+1 train steps of formulation conv with ORT's
// profiler on and returns the kernel milliseconds per step of every
// phase and op type, the warm-up step left out.
func profile(conv string, o options) (map[string]float64, error) {
	tg, err := traingraph.TrainStep(traingraph.Spec{
		Channels: channels, Height: side, Width: side, Hidden: 1024, Classes: 10,
		Dropout: true, Optimizer: traingraph.OptimizerAdam, Conv: conv,
	})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "profilestep-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	prefix := filepath.Join(dir, "profile")
	if err := runSteps(tg, prefix, o); err != nil {
		return nil, err
	}
	files, _ := filepath.Glob(prefix + "*.json")
	if len(files) != 1 {
		return nil, fmt.Errorf("ORT wrote %d profile files, want 1", len(files))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		return nil, err
	}
	var events []event
	if err := json.Unmarshal(b, &events); err != nil {
		return nil, fmt.Errorf("%s: %w", files[0], err)
	}
	return byPhaseAndOp(events, o.steps), nil
}

// runSteps runs the graph with profiling into prefix*.json; the file is
// complete once the session is destroyed.
func runSteps(tg *traingraph.Graph, prefix string, o options) error {
	so, _, _, err := ortlib.SessionOptions(o.rt)
	if err != nil {
		return err
	}
	defer so.Destroy()
	if o.ortConfig != "" {
		for _, kv := range strings.Split(o.ortConfig, ",") {
			k, v, _ := strings.Cut(kv, "=")
			if err := so.AddSessionConfigEntry(k, v); err != nil {
				return fmt.Errorf("-ort-config %s: %w", kv, err)
			}
		}
	}
	if err := so.EnableProfiling(prefix); err != nil {
		return err
	}
	data, err := models.Marshal(tg.Model)
	if err != nil {
		return err
	}
	ins, err := inputs(tg)
	defer destroy(ins)
	if err != nil {
		return err
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, tg.Inputs, tg.Outputs, so)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	outs := make([]ort.Value, len(tg.Outputs)) // allocated by the first run
	defer destroy(outs)
	for range o.steps + 1 {
		if err := sess.Run(ins, outs); err != nil {
			sess.Destroy()
			return fmt.Errorf("run: %w", err)
		}
	}
	return sess.Destroy()
}

func destroy(vs []ort.Value) {
	for _, v := range vs {
		if v != nil {
			v.Destroy()
		}
	}
}
