package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/models/fetch"
)

// Flags of `tlearn models fetch`.
const (
	flagFetchURL         = "url"
	flagFetchSHA256      = "sha256"
	flagFetchDir         = "dir"
	flagFetchNoVerifyRun = "no-verify-run"
	flagFetchConnect     = "connect-timeout"
)

func modelsFetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "fetch",
		Usage:     "download VGG16 from the ONNX Model Zoo (resumable, sha256-verified, test-run)",
		ArgsUsage: "vgg16|vgg16-12|vgg16-7",
		Description: `Downloads an ONNX Model Zoo archive (vgg16 means vgg16-12, 512 MB), follows
GitHub's redirect to its LFS host, resumes an interrupted download, checks the
archive's size and sha256 before using it, unpacks it, and runs the model under
ONNX Runtime on the archive's test data sets (rtol/atol 1e-3, as the zoo's own
checker). Prints the model's path on stdout; running it again reuses the
download. --connect-timeout bounds each connection (name lookup and TCP
connect, then the TLS handshake), not the download: when the first connection
fails, fetch stops at once, so that no network shows within that time. The folder is --dir, else $TLEARN_MODELS_DIR, else
$XDG_CACHE_HOME/tlearn/models (~/.cache/tlearn/models).

Example:
   tlearn models fetch vgg16
   tlearn models fetch vgg16-7 --dir /data/models --no-verify-run
   tlearn models fetch vgg16 --url https://mirror.example.org/vgg16-12.tar.gz
   tlearn models fetch vgg16 --connect-timeout 5s
   tlearn models prepare --onnx "$(tlearn models fetch -q vgg16)" --out model`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagFetchURL, Usage: "download from this mirror instead (the preset's size and sha256 still apply unless --sha256 is given)"},
			&cli.StringFlag{Name: flagFetchSHA256, Usage: "expected sha256 of the archive (for a mirror that serves another build)"},
			&cli.StringFlag{Name: flagFetchDir, Usage: "download folder (default: $XDG_CACHE_HOME/tlearn/models or ~/.cache/tlearn/models)", EnvVars: []string{"TLEARN_MODELS_DIR"}},
			&cli.BoolFlag{Name: flagFetchNoVerifyRun, Usage: "do not run the model on the archive's test data (no ONNX Runtime needed)"},
			&cli.DurationFlag{Name: flagFetchConnect, Value: fetch.DefaultConnectTimeout, Usage: "give up connecting to the server after this `DURATION` (name lookup, TCP connect, then TLS handshake; the download itself has no deadline)"},
		),
		Action: onInterrupt("the bytes downloaded so far are kept and the same command resumes the download", modelsFetchAction),
	}
}

func modelsFetchAction(c *cli.Context) error {
	args, err := fetchInterspersedFlags(c)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usageError{fmt.Errorf("models fetch: want one model name (vgg16, vgg16-12 or vgg16-7), got %d arguments", len(args))}
	}
	preset, err := fetch.LookupPreset(args[0])
	if err != nil {
		return usageError{err}
	}
	s := preset.Settings()
	if u := c.String(flagFetchURL); u != "" {
		s.URL = u
	}
	if sum := strings.ToLower(strings.TrimSpace(c.String(flagFetchSHA256))); sum != "" && sum != s.SHA256 {
		// Another archive: the preset's size says nothing about it.
		s.SHA256, s.Size = sum, 0
	}
	s.Dir = c.String(flagFetchDir)
	if s.ConnectTimeout = c.Duration(flagFetchConnect); s.ConnectTimeout <= 0 {
		return usageError{fmt.Errorf("models fetch: --%s must be positive, got %v", flagFetchConnect, s.ConnectTimeout)}
	}
	s.NoVerifyRun = c.Bool(flagFetchNoVerifyRun)
	if !s.NoVerifyRun {
		if s.ORT, err = sessionOptions(c); err != nil {
			return err
		}
		if _, err := initORT(c); err != nil {
			return fmt.Errorf("%w (or skip the test run with --%s)", err, flagFetchNoVerifyRun)
		}
	}
	w := stderr(c)
	if !c.Bool(flagQuiet) {
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			s.Progress = &fetchBar{w: w, name: preset.Name + ".tar.gz"}
		} else {
			s.Progress = &fetchLines{w: w, name: preset.Name + ".tar.gz"}
		}
	}
	model, err := fetch.Get(c.Context, s)
	if err != nil {
		return withFetchAdvice(err)
	}
	fmt.Fprintln(c.App.Writer, model)
	fmt.Fprintf(w, "model: %s\nnext:  %s\n", model, experiment.CommandLine([]string{"models", "prepare", "--onnx", model, "--out", "model"}))
	return nil
}

// withFetchAdvice adds what the user can do about a fetch error, in terms
// of this command's flags (package fetch's errors do not know them).
func withFetchAdvice(err error) error {
	for _, a := range []struct {
		err    error
		advice string
	}{
		{fetch.ErrDownloadMismatch, "check --" + flagFetchURL + " and --" + flagFetchSHA256 + ", or try again"},
		{fetch.ErrOtherSize, "check --" + flagFetchURL + " and --" + flagFetchSHA256},
		{fetch.ErrInterrupted, "run the same command again to resume"},
		{fetch.ErrSeveralModels, "unpack it yourself and pass the one you want to `tlearn models prepare --onnx`"},
		{fetch.ErrFolderExists, "move it away or choose another --" + flagFetchDir},
		{fetch.ErrNoDir, "set --" + flagFetchDir},
		{fetch.ErrUnreachable, "check the network or --" + flagFetchURL + ", or raise --" + flagFetchConnect},
	} {
		if errors.Is(err, a.err) {
			return fmt.Errorf("%w (%s)", err, a.advice)
		}
	}
	return err
}

// fetchInterspersedFlags lets flags follow the model name
// (`tlearn models fetch vgg16 --no-verify-run`): urfave/cli stops parsing
// at the first argument, so the rest are set here. It returns the
// arguments that are not flags.
func fetchInterspersedFlags(c *cli.Context) ([]string, error) {
	var args []string
	rest := c.Args().Slice()
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			return append(args, rest[i+1:]...), nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			args = append(args, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fetchFlagNamed(c.Command.Flags, name)
		if f == nil {
			return nil, usageError{fmt.Errorf("models fetch: unknown flag %s", a)}
		}
		if _, isBool := f.(*cli.BoolFlag); isBool {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(rest) {
				return nil, usageError{fmt.Errorf("models fetch: flag %s needs a value", a)}
			}
			i++
			value = rest[i]
		}
		if err := c.Set(f.Names()[0], value); err != nil {
			return nil, usageError{fmt.Errorf("models fetch: %s: %w", a, err)}
		}
	}
	return args, nil
}

func fetchFlagNamed(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// fetchBar and fetchLines show a download's bytes, where countBar would
// show a count of items.
var (
	_ progress.Reporter = (*fetchBar)(nil)
	_ progress.Reporter = (*fetchLines)(nil)
)

// fetchBar draws a progress bar with bytes/s and ETA on a terminal.
type fetchBar struct {
	w    io.Writer
	name string
	bar  *progressbar.ProgressBar
}

// Start begins a transfer of total bytes (-1 when unknown), offset of
// which are on disk from an interrupted download. The phase is always
// fetch.DownloadPhase; the bar shows the file's name instead.
func (p *fetchBar) Start(_ string, total, offset int) {
	desc := p.name
	remaining := int64(-1)
	if total > 0 {
		remaining = int64(total - offset)
	}
	if offset > 0 {
		desc = fmt.Sprintf("%s (from %s)", p.name, fsutil.FormatBytes(int64(offset)))
	}
	// The bar counts only this transfer's bytes, so that its rate and ETA
	// are not inflated by what an earlier run downloaded.
	p.bar = progressbar.NewOptions64(remaining,
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionFullWidth(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
	)
}

func (p *fetchBar) Add(n int) {
	if p.bar != nil {
		p.bar.Add(n)
	}
}

func (p *fetchBar) Finish() {
	if p.bar != nil {
		// A full bar has ended its line already; Exit ends a partial one.
		if !p.bar.IsFinished() {
			p.bar.Exit()
		}
		p.bar = nil
	}
}

func (p *fetchBar) Log(msg string) {
	if p.bar != nil {
		p.bar.Clear()
	}
	fmt.Fprintln(p.w, msg)
}

// fetchLines prints a progress line every plainLineEvery, for logs and
// pipes where a redrawn bar would be noise.
type fetchLines struct {
	w                  io.Writer
	name               string
	offset, total, got int64
	start, last        time.Time
}

// Start begins a transfer; see fetchBar.Start.
func (p *fetchLines) Start(_ string, total, offset int) {
	p.offset, p.total, p.got = int64(offset), int64(total), 0
	p.start = time.Now()
	p.last = p.start
	what := "unknown size"
	if total > 0 {
		what = fsutil.FormatBytes(p.total)
	}
	if offset > 0 {
		fmt.Fprintf(p.w, "downloading %s (%s) from %s\n", p.name, what, fsutil.FormatBytes(p.offset))
	} else {
		fmt.Fprintf(p.w, "downloading %s (%s)\n", p.name, what)
	}
}

func (p *fetchLines) Add(n int) {
	p.got += int64(n)
	if now := time.Now(); now.Sub(p.last) >= plainLineEvery {
		p.last = now
		p.line(now)
	}
}

func (p *fetchLines) Finish() { p.line(time.Now()) }

func (p *fetchLines) Log(msg string) { fmt.Fprintln(p.w, msg) }

func (p *fetchLines) line(now time.Time) {
	secs := now.Sub(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(p.got) / secs
	}
	have := p.offset + p.got
	if p.total <= 0 {
		fmt.Fprintf(p.w, "  %s, %s/s\n", fsutil.FormatBytes(have), fsutil.FormatBytes(int64(rate)))
		return
	}
	fmt.Fprintf(p.w, "  %s of %s (%.0f%%), %s/s, ETA %s\n",
		fsutil.FormatBytes(have), fsutil.FormatBytes(p.total), 100*float64(have)/float64(p.total), fsutil.FormatBytes(int64(rate)), eta(float64(p.total-have), rate))
}
