package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/fsutil"
)

const (
	flagCacheVerify = "verify"
	flagCacheCheck  = "check"
)

func cacheCommand() *cli.Command {
	return &cli.Command{
		Name:  "cache",
		Usage: "inspect feature caches made by extract, and merge the shards of extract --shard",
		Description: `Example:
   tlearn cache info cache
   tlearn cache info --verify cache/train
   tlearn cache merge --check cache
   tlearn cache merge cache`,
		Subcommands: []*cli.Command{cacheInfoCommand(), cacheMergeCommand()},
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
		if errors.Is(err, cache.ErrNotCache) {
			if _, serr := os.Stat(filepath.Join(d, cache.ShardsDir)); serr == nil {
				return fmt.Errorf("%w; it holds the shards of a sharded extraction: tlearn cache merge --check %s reports them, tlearn cache merge %s joins them", err, d, d)
			}
		}
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
	if sh := m.Shard; sh != nil {
		fmt.Fprintf(w, "  shard:         %d of %d (%s): rows [%d,%d) of %d, batch %d, listing sha256 %.12s…; tlearn cache merge joins the shards\n",
			sh.Index, sh.Count, cache.ShardName(sh.Index, sh.Count), sh.Start, sh.End, sh.Total, sh.Batch, sh.Listing)
		fmt.Fprintf(w, "  ran on:        %s, ONNX Runtime %s, %s, CPU %s, tlearn %s\n",
			sh.Ran.Host, sh.Ran.ORT, sh.Ran.Provider, strings.Join(sh.Ran.CPUFeatures, ","), sh.Ran.Tlearn)
	}
	fmt.Fprintf(w, "  written:       %s to %s\n", m.Created.Local().Format(time.DateTime), m.Updated.Local().Format(time.DateTime))
}

func cacheMergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "write the cache of a sharded extraction (extract --shard) from its shards",
		ArgsUsage: "DIR",
		Description: `Writes the cache (or, for shards made with --val, DIR/train and DIR/val) from
the shards in DIR/shards/ that extract --shard I/N wrote: the rows in listing
order, features.npy, labels.npy and maps.npy byte for byte what a single
extract with the same settings and threads writes, and its manifest but for
the times. Every shard's chunks are checked against their checksums as they
are copied.

It refuses, naming the shards, while any is missing, unfinished, damaged,
being written by a live task (its pid, host and command) or made differently
from the others (model, preprocessing, size, interpolation, views, classes,
split, listing, batch); a killed task's temporary files are ignored. It warns
when shards ran on different ONNX Runtime versions, providers or CPU features
(their features may differ in the last bits). A killed merge is redone by the
same command; a finished one is only checked. The shards are kept: rm -r
DIR/shards removes them once the merged cache is all you need.

--check changes nothing: it prints every shard's state (complete, rows done,
missing, bad checksum, mismatch, being written) and the extract commands
that redo the shards that are not complete, and exits 1 when any is not.

Example:
   tlearn cache merge --check cache
   tlearn cache merge cache
   tlearn train --train cache/train --val cache/val --out run`,
		Flags:  withCommon(&cli.BoolFlag{Name: flagCacheCheck, Usage: "only report the shards' states and the commands that redo the missing ones (exit 1 when any is not complete)"}),
		Action: onInterrupt("the shards were not changed; a merged part stays, and the same command redoes the rest", cacheMergeAction),
	}
}

func cacheMergeAction(c *cli.Context) error {
	for _, a := range c.Args().Slice() {
		if len(a) > 1 && strings.HasPrefix(a, "-") {
			return usageError{fmt.Errorf("cache merge: put flags such as %s before the folder", a)}
		}
	}
	if c.Args().Len() != 1 {
		return usageError{errors.New("cache merge takes one cache folder (the --cache of extract --shard)")}
	}
	dir := c.Args().First()
	if c.Bool(flagCacheCheck) {
		r, err := experiment.CheckShards(c.Context, dir, true)
		if err != nil {
			return err
		}
		printShardReport(c.App.Writer, r)
		if redo := r.Redo(); len(redo) > 0 {
			return fmt.Errorf("%d of %d shards of %s are not complete", len(redo), r.Count, dir)
		}
		return nil
	}
	p := newReporter(stderr(c))
	defer p.Finish()
	results, err := experiment.MergeShards(c.Context, dir, p)
	if err != nil {
		if errors.Is(err, cache.ErrShards) {
			return fmt.Errorf("%w (tlearn cache merge --check %s lists every shard and the commands that redo them)", err, dir)
		}
		return err
	}
	for _, r := range results {
		if r.UpToDate {
			p.Log(fmt.Sprintf("%s: up to date: %d images from %d shards", r.Dir, r.N, r.Shards))
			continue
		}
		p.Log(fmt.Sprintf("%s: %d images merged from %d shards in %s", r.Dir, r.N, r.Shards, fsutil.FormatSeconds(r.Elapsed.Seconds())))
	}
	shards := filepath.Join(dir, cache.ShardsDir)
	p.Log(fmt.Sprintf("the shards are kept in %s; rm -r %s removes them", shards, shards))
	return nil
}

// printShardReport writes the state of every shard and, for those that are
// not complete, the extract commands that redo them.
func printShardReport(w io.Writer, r *experiment.ShardReport) {
	for _, st := range r.Shards {
		line := fmt.Sprintf("%s  %-13s", cache.ShardName(st.Index, r.Count), st.Status)
		if st.Status != experiment.ShardMissing {
			line += fmt.Sprintf("  %d/%d rows", st.Done, st.Total)
		}
		if st.Err != nil && st.Status != experiment.ShardIncomplete {
			line += "  " + st.Err.Error()
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	redo := r.Redo()
	if len(redo) == 0 {
		fmt.Fprintf(w, "all %d shards are complete: tlearn cache merge %s\n", r.Count, r.Dir)
		return
	}
	if r.Example == nil {
		fmt.Fprintf(w, "%d of %d shards are not complete; no shard has a manifest yet to take the settings from: rerun your extract --%s I/%d command for each index below\n",
			len(redo), r.Count, flagExtractShard, r.Count)
	} else {
		fmt.Fprintf(w, "%d of %d shards are not complete; these commands redo them (add the --%s and --%s the other shards ran with: the merge is a single run's cache only if every shard used the same):\n",
			len(redo), r.Count, flagThreads, flagDevice)
		for _, st := range redo {
			if st.Status == experiment.ShardWriting {
				fmt.Fprintf(w, "  (shard %d is being written: wait for its task)\n", st.Index)
				continue
			}
			fmt.Fprintf(w, "  %s\n", shardCommand(r, st))
		}
	}
	var idx []string
	for _, st := range redo {
		if st.Status != experiment.ShardWriting {
			idx = append(idx, fmt.Sprint(st.Index))
		}
	}
	if len(idx) > 0 {
		fmt.Fprintf(w, "on Slurm: sbatch --array=%s <your extract script>\n", strings.Join(idx, ","))
	}
}

// shardCommand is the extract command that redoes shard st, built from
// the settings that an existing shard recorded; a damaged or mismatching
// shard is rebuilt (--force).
func shardCommand(r *experiment.ShardReport, st experiment.ShardState) string {
	m := r.Example
	data := m.DataDir
	if r.Plan != nil {
		data = r.Plan.Listing.Data
	}
	args := []string{"tlearn", "extract", "--" + flagExtractModel, m.Model.Dir, "--" + flagExtractData, data, "--" + flagExtractCache, r.Dir}
	if m.Split != nil {
		args = append(args, "--"+flagExtractVal, fmt.Sprint(m.Split.Val), "--"+flagExtractSeed, fmt.Sprint(m.Split.Seed))
	}
	args = append(args, "--"+flagExtractSize, fmt.Sprint(m.Size), "--"+flagExtractInterpolation, m.Interpolation)
	if m.Shard != nil {
		args = append(args, "--"+flagExtractBatch, fmt.Sprint(m.Shard.Batch))
	}
	if m.MapsShape != nil {
		args = append(args, "--"+flagExtractMaps)
	}
	if m.Views > 1 && m.Augment != nil {
		args = append(args, "--"+flagExtractViews, fmt.Sprint(m.Views), "--"+flagExtractAugment, m.Augment.Spec, "--"+flagExtractAugmentSeed, fmt.Sprint(m.Augment.Seed))
	}
	if len(m.Skipped) > 0 {
		args = append(args, "--"+flagExtractSkipBad)
	}
	if st.Status == experiment.ShardBad || st.Status == experiment.ShardMismatch {
		args = append(args, "--"+flagExtractForce)
	}
	args = append(args, "--"+flagExtractShard, fmt.Sprintf("%d/%d", st.Index, r.Count))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\*?[]()<>|&;#~") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(args, " ")
}
