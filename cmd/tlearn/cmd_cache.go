package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/fsutil"
)

const flagCacheVerify = "verify"

func cacheCommand() *cli.Command {
	return &cli.Command{
		Name:  "cache",
		Usage: "inspect feature caches made by extract",
		Description: `Example:
   tlearn cache info cache
   tlearn cache info --verify cache/train`,
		Subcommands: []*cli.Command{cacheInfoCommand()},
	}
}

func cacheInfoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "summarize a cache, or the train/ and val/ caches of a folder",
		ArgsUsage: "DIR",
		Description: `Prints the number of images and their classes, the feature dimension, the
maps' shape, the model and settings the cache was made with, its fingerprint,
its size on disk, and whether extraction finished (an unfinished cache resumes
when its extract command runs again). --verify also recomputes the checksum
of every finished chunk.

Example:
   tlearn cache info cache
   tlearn cache info --verify cache/train`,
		Flags:  withCommon(&cli.BoolFlag{Name: flagCacheVerify, Usage: "recompute the checksums of the finished chunks (reads the whole cache)"}),
		Action: onInterrupt("the cache was not changed; the same command checks it again from the start", cacheInfoAction),
	}
}

func cacheInfoAction(c *cli.Context) error {
	for _, a := range c.Args().Slice() {
		// urfave/cli stops reading flags at the first argument.
		if len(a) > 1 && strings.HasPrefix(a, "-") {
			return usageError{fmt.Errorf("cache info: put flags such as %s before the folder", a)}
		}
	}
	if c.Args().Len() != 1 {
		return usageError{errors.New("cache info takes one cache folder")}
	}
	out := c.App.Writer
	for i, d := range experiment.CacheDirs(c.Args().First()) {
		if i > 0 {
			fmt.Fprintln(out)
		}
		m, err := cache.ReadManifest(d)
		if err != nil {
			return err
		}
		printCacheInfo(out, d, m)
		if c.Bool(flagCacheVerify) {
			if err := cache.Verify(c.Context, d); err != nil {
				return err
			}
			fmt.Fprintf(out, "  checksums:     %d chunks verified\n", len(m.Done))
		}
	}
	return nil
}

func printCacheInfo(w io.Writer, dir string, m *cache.Manifest) {
	fmt.Fprintf(w, "%s\n", dir)
	if m.Complete() {
		fmt.Fprintf(w, "  complete:      yes\n")
	} else {
		fmt.Fprintf(w, "  complete:      no: %d of %d images done; run its extract command again to resume\n", m.DoneRows(), m.N)
	}
	counts := m.ClassCounts()
	var cls []string
	for i, name := range m.Classes {
		cls = append(cls, fmt.Sprintf("%s %d", name, counts[i]))
	}
	fmt.Fprintf(w, "  images:        %d in %d classes: %s\n", m.N, len(m.Classes), strings.Join(cls, ", "))
	if len(m.Skipped) > 0 {
		fmt.Fprintf(w, "  left out:      %d images:\n", len(m.Skipped))
		for _, s := range m.Skipped {
			fmt.Fprintf(w, "    %s: %s\n", s.Path, s.Reason)
		}
	}
	fmt.Fprintf(w, "  features:      %d float32 per image\n", m.FeatureDim)
	if m.MapsShape != nil {
		fmt.Fprintf(w, "  maps:          %d×%d×%d float16 per image\n", m.MapsShape[0], m.MapsShape[1], m.MapsShape[2])
	} else {
		fmt.Fprintf(w, "  maps:          none (extract --maps stores them for finetune)\n")
	}
	if m.Views > 1 {
		fmt.Fprintf(w, "  views:         %d per image: view 0 plain, 1..%d augmented with --augment %s --augment-seed %d (arrays [N,%d,...])\n",
			m.Views, m.Views-1, m.Augment.Spec, m.Augment.Seed, m.Views)
	} else {
		fmt.Fprintf(w, "  views:         1 per image, plain (extract --views K --augment LIST stores augmented ones)\n")
	}
	precision := "float32"
	if m.Model.Quantization != "" {
		precision = "int8 (" + m.Model.Quantization + ")"
	}
	fmt.Fprintf(w, "  model:         %s (preset %s, %s, extractor.onnx sha256 %s)\n", m.Model.Dir, m.Model.Preset, precision, m.Model.ExtractorSHA256)
	var pre bytes.Buffer
	if json.Compact(&pre, m.Preprocessing) != nil {
		pre.Reset()
		pre.Write(m.Preprocessing)
	}
	fmt.Fprintf(w, "  input:         %d×%d, %s, preprocessing %s\n", m.Size, m.Size, m.Interpolation, pre.String())
	fmt.Fprintf(w, "  fingerprint:   %s\n", m.Fingerprint)
	if m.Split != nil {
		fmt.Fprintf(w, "  split:         %s part of --val %g --seed %d\n", m.Split.Part, m.Split.Val, m.Split.Seed)
	}
	fmt.Fprintf(w, "  data:          %s\n", m.DataDir)
	if n, err := cache.DiskSize(dir); err == nil {
		fmt.Fprintf(w, "  size on disk:  %s\n", fsutil.FormatBytes(n))
	}
	fmt.Fprintf(w, "  written:       %s to %s\n", m.Created.Local().Format(time.DateTime), m.Updated.Local().Format(time.DateTime))
}
