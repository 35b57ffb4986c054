package deploy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The CLI of the sharded caching job, as issue 12 specifies it (and as
// `tlearn extract --help` and `tlearn cache merge --help` document it):
// the flags a runbook may pass, which take a value, and what each command
// requires. The end-to-end test of cmd/tlearn (slurm_test.go) runs the
// Slurm runbook's scripts with the real binary.
var (
	// Flags of every subcommand (cmd/tlearn/flags.go's commonFlags).
	commonValue = []string{"ort-lib", "device", "threads"}
	commonBool  = []string{"quiet", "q"}

	extractValue = []string{"model", "data", "cache", "val", "seed", "size", "interpolation", "batch",
		"views", "augment", "augment-seed", "shard"}
	extractBool = []string{"maps", "force", "skip-bad", "strict", "plan"}

	mergeValue = []string{}
	mergeBool  = []string{"check"}
)

// tlearnCall is one parsed tlearn command line.
type tlearnCall struct {
	cmd   string              // "extract" or "cache merge"
	flags map[string][]string // flag name (no dashes) to its values; "true" for a bool flag
	args  []string            // positional arguments
}

func (c *tlearnCall) value(name string) string {
	if v := c.flags[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (c *tlearnCall) has(name string) bool { return len(c.flags[name]) > 0 }

// parseTlearn parses argv (argv[0] is tlearn) as tlearn's urfave/cli
// would: flags (-f or --f, with a value as the next word or after =)
// before the positional arguments, since tlearn does not read flags that
// follow one. It checks what each command requires and the values the
// runbooks set.
func parseTlearn(argv []string) (*tlearnCall, error) {
	if len(argv) < 2 || argv[0] != "tlearn" {
		return nil, fmt.Errorf("not a tlearn command: %q", argv)
	}
	c := &tlearnCall{flags: map[string][]string{}}
	var value, boolean []string
	rest := argv[1:]
	switch {
	case rest[0] == "extract":
		c.cmd, value, boolean, rest = "extract", extractValue, extractBool, rest[1:]
	case len(rest) > 1 && rest[0] == "cache" && rest[1] == "merge":
		c.cmd, value, boolean, rest = "cache merge", mergeValue, mergeBool, rest[2:]
	default:
		return nil, fmt.Errorf("%q: not extract or cache merge", argv)
	}
	value = append(slices.Clone(value), commonValue...)
	boolean = append(slices.Clone(boolean), commonBool...)
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		if !strings.HasPrefix(w, "-") || w == "-" {
			c.args = rest[i:]
			break
		}
		name, v, hasV := strings.Cut(strings.TrimLeft(w, "-"), "=")
		switch {
		case slices.Contains(value, name):
			if !hasV {
				if i+1 == len(rest) {
					return nil, fmt.Errorf("%s: --%s needs a value", c.cmd, name)
				}
				i++
				v = rest[i]
			}
		case slices.Contains(boolean, name):
			if hasV && v != "true" && v != "false" {
				return nil, fmt.Errorf("%s: --%s=%s: a switch takes no value", c.cmd, name, v)
			}
			if !hasV {
				v = "true"
			}
		default:
			return nil, fmt.Errorf("%s: unknown flag %s", c.cmd, w)
		}
		c.flags[name] = append(c.flags[name], v)
	}
	for _, a := range c.args {
		if strings.HasPrefix(a, "-") {
			return nil, fmt.Errorf("%s: the flag %s follows an argument: tlearn does not read it", c.cmd, a)
		}
	}
	return c, c.check()
}

// check is what each command requires of its flags and their values.
func (c *tlearnCall) check() error {
	need := func(names ...string) error {
		for _, n := range names {
			if !c.has(n) {
				return fmt.Errorf("%s: missing --%s", c.cmd, n)
			}
		}
		return nil
	}
	for name, vs := range c.flags {
		if len(vs) > 1 {
			return fmt.Errorf("%s: --%s given %d times", c.cmd, name, len(vs))
		}
	}
	switch c.cmd {
	case "extract":
		if len(c.args) > 0 {
			return fmt.Errorf("extract takes no arguments, got %q", c.args)
		}
		if c.has("plan") {
			if err := need("data", "cache"); err != nil {
				return err
			}
			for _, n := range []string{"model", "shard", "maps", "views"} {
				if c.has(n) {
					return fmt.Errorf("extract --plan lists the dataset only: --%s has no place in it", n)
				}
			}
		} else if err := need("model", "data", "cache"); err != nil {
			return err
		}
		if v := c.value("val"); v != "" && !strings.HasPrefix(v, "$") {
			if f, err := strconv.ParseFloat(v, 64); err != nil || f <= 0 || f >= 1 {
				return fmt.Errorf("extract: --val %s: want a fraction in (0, 1)", v)
			}
		}
		if c.has("seed") != c.has("val") {
			return fmt.Errorf("extract: --seed without --val or --val without --seed: the runbooks name both")
		}
		if v := c.value("shard"); v != "" {
			if _, _, err := parseShard(v); err != nil {
				return err
			}
		}
	case "cache merge":
		if len(c.args) != 1 {
			return fmt.Errorf("cache merge takes one cache folder, got %q", c.args)
		}
	}
	if v := c.value("threads"); v != "" && !strings.HasPrefix(v, "$") {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			return fmt.Errorf("%s: --threads %s: want a count", c.cmd, v)
		}
	}
	return nil
}

// parseShard reads --shard I/N or auto/N; i is -1 for auto.
func parseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	n, nerr := strconv.Atoi(b)
	if !ok || nerr != nil || n <= 0 {
		return 0, 0, fmt.Errorf("--shard %s: want I/N or auto/N with N a count", s)
	}
	if a == "auto" {
		return -1, n, nil
	}
	i, err = strconv.Atoi(a)
	if err != nil || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %s: want an index I in [0, N)", s)
	}
	return i, n, nil
}
