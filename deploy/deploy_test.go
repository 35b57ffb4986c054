package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// decodeStrict decodes one YAML document into v as the API server would
// refuse it: a duplicate key, a field v's type does not have, or a field
// written in another case than the API's (encoding/json would match
// "Completions" to completions, so the decoded object is encoded again and
// every key of the document must be found there with its value).
func decodeStrict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	again, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var orig, round any
	if err := json.Unmarshal(js, &orig); err != nil {
		return err
	}
	if err := json.Unmarshal(again, &round); err != nil {
		return err
	}
	return subset("", orig, round)
}

// subset reports the first value of a that b lacks or holds otherwise.
func subset(at string, a, b any) error {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: not an object after decoding", at)
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok {
				return fmt.Errorf("%s.%s: no such field (or not in the API's case)", at, k)
			}
			if err := subset(at+"."+k, v, w); err != nil {
				return err
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(y) != len(x) {
			return fmt.Errorf("%s: a list of another length after decoding", at)
		}
		for i := range x {
			if err := subset(fmt.Sprintf("%s[%d]", at, i), x[i], y[i]); err != nil {
				return err
			}
		}
	default:
		if !reflect.DeepEqual(a, b) {
			return fmt.Errorf("%s: %v decodes as %v", at, a, b)
		}
	}
	return nil
}

func TestDecodeStrictRefuses(t *testing.T) {
	for _, tc := range []struct{ desc, doc, want string }{
		{"unknown field", "apiVersion: batch/v1\nkind: Job\nspec:\n  completion: 3\n", `unknown field "completion"`},
		{"field in another case", "apiVersion: batch/v1\nkind: Job\nspec:\n  Completions: 3\n", "spec.Completions: no such field"},
		{"duplicate key", "apiVersion: batch/v1\nkind: Job\nspec:\n  completions: 3\n  completions: 4\n", "already set"},
		{"wrong type", "apiVersion: batch/v1\nkind: Job\nspec:\n  completions: three\n", "cannot unmarshal string"},
		{"bad enum is kept, then checked", "apiVersion: batch/v1\nkind: Job\nspec:\n  completionMode: indexed\n", ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var j batchv1.Job
			err := decodeStrict([]byte(tc.doc), &j)
			if tc.want == "" {
				if err != nil || j.Spec.CompletionMode == nil || *j.Spec.CompletionMode == batchv1.IndexedCompletion {
					t.Errorf("err %v, mode %v", err, j.Spec.CompletionMode)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// manifests reads every YAML file of deploy/k8s into its object, strictly:
// Jobs into batchv1.Job, the volume claim into corev1.PersistentVolumeClaim.
func manifests(t *testing.T) (jobs map[string]*batchv1.Job, pvcs map[string]*corev1.PersistentVolumeClaim) {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	jobs, pvcs = map[string]*batchv1.Job{}, map[string]*corev1.PersistentVolumeClaim{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("\n---")) {
			t.Errorf("%s: one object per file (run.sh applies them one by one)", f)
		}
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(b, &meta); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch meta.APIVersion + " " + meta.Kind {
		case "batch/v1 Job":
			var j batchv1.Job
			if err := decodeStrict(b, &j); err != nil {
				t.Fatalf("%s: not a batch/v1 Job: %v", f, err)
			}
			jobs[filepath.Base(f)] = &j
		case "v1 PersistentVolumeClaim":
			var p corev1.PersistentVolumeClaim
			if err := decodeStrict(b, &p); err != nil {
				t.Fatalf("%s: not a v1 PersistentVolumeClaim: %v", f, err)
			}
			pvcs[p.Name] = &p
		default:
			t.Fatalf("%s: unexpected %s %s", f, meta.APIVersion, meta.Kind)
		}
	}
	return jobs, pvcs
}

// TestKubernetesManifests checks the Kubernetes runbook: the plan Job, the
// Indexed Job of shards with the settings its comments explain, the merge
// Job, the shared volume, and that every tlearn command in them parses and
// writes to the volume.
func TestKubernetesManifests(t *testing.T) {
	jobs, pvcs := manifests(t)
	calls := map[string][]*tlearnCall{}
	for file, j := range jobs {
		if j.Name == "" {
			t.Errorf("%s: no metadata.name", file)
		}
		ps := j.Spec.Template.Spec
		if ps.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("%s: restartPolicy %q, want Never (a retry is a new pod, which the Job's backoff counts)", file, ps.RestartPolicy)
		}
		mounts := map[string]string{} // volume name to claim
		for _, v := range ps.Volumes {
			if v.PersistentVolumeClaim == nil {
				t.Errorf("%s: volume %s is not the shared claim", file, v.Name)
				continue
			}
			p, ok := pvcs[v.PersistentVolumeClaim.ClaimName]
			if !ok {
				t.Errorf("%s: volume %s claims %q, which no manifest defines", file, v.Name, v.PersistentVolumeClaim.ClaimName)
				continue
			}
			if !slices.Equal(p.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}) {
				t.Errorf("claim %s: access modes %v, want ReadWriteMany (pods on many nodes write it)", p.Name, p.Spec.AccessModes)
			}
			mounts[v.Name] = p.Name
		}
		for _, c := range append(slices.Clone(ps.InitContainers), ps.Containers...) {
			argv := append(slices.Clone(c.Command), c.Args...)
			call, err := parseTlearn(argv)
			if err != nil {
				t.Errorf("%s: container %s: %v", file, c.Name, err)
				continue
			}
			calls[file] = append(calls[file], call)
			// The cache (and a model on the volume) must be under a
			// mount of the shared claim.
			for _, flag := range []string{"cache", "model"} {
				p := call.value(flag)
				if flag == "cache" && call.cmd == "cache merge" {
					p = call.args[0]
				}
				if p == "" || (flag == "model" && !strings.HasPrefix(p, "/")) {
					continue
				}
				if !mountedAt(c.VolumeMounts, mounts, p) {
					t.Errorf("%s: container %s: --%s %s is not on a mount of the shared claim (%v)", file, c.Name, flag, p, c.VolumeMounts)
				}
			}
		}
	}

	plan, extract, merge := one(t, calls, "plan-job.yaml"), one(t, calls, "extract-job.yaml"), calls["merge-job.yaml"]
	if !plan.has("plan") {
		t.Error("plan-job.yaml: not extract --plan")
	}
	// The shards: an Indexed Job whose completions are N.
	j := jobs["extract-job.yaml"]
	if j == nil {
		t.Fatal("no extract-job.yaml")
	}
	s := j.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("extract-job.yaml: completionMode %v, want Indexed (JOB_COMPLETION_INDEX)", derefString(s.CompletionMode))
	}
	_, n, err := parseShard(extract.value("shard"))
	if err != nil || !strings.HasPrefix(extract.value("shard"), "auto/") {
		t.Errorf("extract-job.yaml: --shard %q, want auto/N (%v)", extract.value("shard"), err)
	}
	if s.Completions == nil || int(*s.Completions) != n {
		t.Errorf("extract-job.yaml: completions %v, want N of --shard auto/%d", deref(s.Completions), n)
	}
	if s.Parallelism == nil || *s.Parallelism < 1 || int(*s.Parallelism) > n {
		t.Errorf("extract-job.yaml: parallelism %v, want 1..%d", deref(s.Parallelism), n)
	}
	if s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex < 1 {
		t.Errorf("extract-job.yaml: backoffLimitPerIndex %v, want retries per index (a retry resumes the shard)", deref(s.BackoffLimitPerIndex))
	}
	if s.MaxFailedIndexes != nil {
		t.Errorf("extract-job.yaml: maxFailedIndexes %d: the runbook leaves it unset, so that one failed index does not stop the shards still running", *s.MaxFailedIndexes)
	}
	if s.PodReplacementPolicy == nil || *s.PodReplacementPolicy != batchv1.Failed {
		t.Errorf("extract-job.yaml: podReplacementPolicy %v, want Failed (no replacement beside a pod still terminating)", derefString(s.PodReplacementPolicy))
	}
	failIndexOn2 := false
	if s.PodFailurePolicy != nil {
		for _, r := range s.PodFailurePolicy.Rules {
			if r.Action == batchv1.PodFailurePolicyActionFailIndex && r.OnExitCodes != nil &&
				r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && slices.Contains(r.OnExitCodes.Values, 2) {
				failIndexOn2 = r.OnExitCodes.ContainerName != nil && *r.OnExitCodes.ContainerName == s.Template.Spec.Containers[0].Name
			}
		}
	}
	if !failIndexOn2 {
		t.Error("extract-job.yaml: no podFailurePolicy rule that fails the index on exit status 2 (a usage error) of the extract container")
	}
	c := s.Template.Spec.Containers[0]
	cpu := c.Resources.Requests[corev1.ResourceCPU]
	if cpu.IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("extract-job.yaml: resources %v: want a CPU request and a memory limit", c.Resources)
	}
	if th, err := strconv.Atoi(extract.value("threads")); err != nil || int64(th) != cpu.Value() {
		t.Errorf("extract-job.yaml: --threads %q, want the CPU request %s", extract.value("threads"), cpu.String())
	}
	// The three Jobs work on the same cache and listing.
	if len(merge) != 2 || !merge[0].has("check") || merge[1].has("check") {
		t.Errorf("merge-job.yaml: want cache merge --check (init container) then cache merge, got %d commands", len(merge))
	}
	for _, m := range merge {
		if m.args[0] != extract.value("cache") {
			t.Errorf("merge-job.yaml merges %s, the shards write %s", m.args[0], extract.value("cache"))
		}
	}
	for _, f := range []string{"data", "cache", "val", "seed"} {
		if plan.value(f) != extract.value(f) {
			t.Errorf("--%s: the plan's %q, the shards' %q", f, plan.value(f), extract.value(f))
		}
	}

	// run.sh applies every manifest, and waits for both ends of a Job.
	b, err := os.ReadFile("k8s/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	bashN(t, "k8s/run.sh")
	for file, j := range jobs {
		if !bytes.Contains(b, []byte(`"$here/`+file+`"`)) || !bytes.Contains(b, []byte(j.Name)) {
			t.Errorf("k8s/run.sh does not apply %s (Job %s)", file, j.Name)
		}
	}
	for _, want := range []string{"Complete", "Failed", "cache-pvc.yaml"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("k8s/run.sh does not mention %s", want)
		}
	}
}

func one(t *testing.T, calls map[string][]*tlearnCall, file string) *tlearnCall {
	t.Helper()
	if len(calls[file]) != 1 {
		t.Fatalf("%s: %d tlearn commands, want 1", file, len(calls[file]))
	}
	return calls[file][0]
}

func deref(p *int32) any {
	if p == nil {
		return "unset"
	}
	return *p
}

func derefString[T ~string](p *T) string {
	if p == nil {
		return "unset"
	}
	return string(*p)
}

// mountedAt reports whether p lies under a mount of one of the volumes.
func mountedAt(ms []corev1.VolumeMount, volumes map[string]string, p string) bool {
	for _, m := range ms {
		if _, ok := volumes[m.Name]; ok && m.SubPath == "" && strings.HasPrefix(path.Clean(p)+"/", path.Clean(m.MountPath)+"/") {
			return true
		}
	}
	return false
}

func bashN(t *testing.T, file string) {
	t.Helper()
	if out, err := exec.Command("bash", "-n", file).CombinedOutput(); err != nil {
		t.Errorf("bash -n %s: %v\n%s", file, err, out)
	}
}

// sbatchOptions are a script's #SBATCH lines, option to value.
func sbatchOptions(src string) map[string]string {
	opts := map[string]string{}
	for _, line := range strings.Split(src, "\n") {
		if rest, ok := strings.CutPrefix(line, "#SBATCH "); ok {
			k, v, _ := strings.Cut(strings.TrimSpace(rest), "=")
			opts[k] = v
		}
	}
	return opts
}

// arrayIndices expands an --array value (0-15, 0-15%4, 1,3,5-7).
func arrayIndices(s string) ([]int, error) {
	s, _, _ = strings.Cut(s, "%")
	var idx []int
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(a)
		if err != nil {
			return nil, fmt.Errorf("--array=%s: %q", s, part)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(b); err != nil || hi < lo {
				return nil, fmt.Errorf("--array=%s: %q", s, part)
			}
		}
		for i := lo; i <= hi; i++ {
			idx = append(idx, i)
		}
	}
	return idx, nil
}

// scriptCalls are the tlearn commands a script runs: the words from each
// unquoted "$TLEARN" to the end of its command.
func scriptCalls(t *testing.T, file, src string) []*tlearnCall {
	t.Helper()
	var calls []*tlearnCall
	for i := 0; ; {
		at := strings.Index(src[i:], `"$TLEARN" `)
		if at < 0 {
			return calls
		}
		at += i
		line := src[strings.LastIndexByte(src[:at], '\n')+1 : at]
		i = at + len(`"$TLEARN" `)
		if strings.Contains(line, "#") {
			continue // a comment
		}
		words, err := shellWords(src[i:])
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		call, err := parseTlearn(append([]string{"tlearn"}, words...))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		calls = append(calls, call)
	}
}

// shellWords splits the start of src into words as bash would, up to the
// end of the command (an unquoted newline, ;, &, | or #), joining lines
// ended by a backslash. Quotes are removed; parameters are kept as
// written ("$CACHE" is the word $CACHE).
func shellWords(src string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(src); i++ {
		ch := src[i]
		switch {
		case ch == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i++
			flush()
		case ch == '\\' && i+1 < len(src):
			i++
			w.WriteByte(src[i])
			inWord = true
		case ch == '\'' || ch == '"':
			end := strings.IndexByte(src[i+1:], ch)
			if end < 0 {
				return nil, fmt.Errorf("unterminated %c in %q", ch, src)
			}
			w.WriteString(src[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case ch == ' ' || ch == '\t':
			flush()
		case ch == '\n' || ch == ';' || ch == '&' || ch == '|' || (ch == '#' && !inWord):
			flush()
			return words, nil
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	return words, nil
}

func TestShellWords(t *testing.T) {
	got, err := shellWords("extract --data \"$DATA\" --val '0.2' \\\n\t--threads \"${X:-1}\" --shard auto/16 # n\nnext")
	want := []string{"extract", "--data", "$DATA", "--val", "0.2", "--threads", "${X:-1}", "--shard", "auto/16"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

// defaults are a script's settings, VAR=${VAR:-DEFAULT} (export or not).
var defaultRE = regexp.MustCompile(`(?m)^(?:export )?([A-Z]+)=\$\{([A-Z]+):-([^}]*)\}$`)

// TestSlurmScripts checks the Slurm runbook: the scripts parse (bash -n);
// the array's indices are exactly 0..N-1 for the N of --shard auto/N; the
// merge waits on the array with afterany, never afterok; every tlearn
// command parses; the settings at the top of the scripts agree.
func TestSlurmScripts(t *testing.T) {
	files := []string{"plan.sbatch", "extract.sbatch", "merge.sbatch", "submit.sh"}
	src := map[string]string{}
	defaults := map[string]map[string]string{} // setting to file to default
	for _, f := range files {
		p := filepath.Join("slurm", f)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		bashN(t, p)
		src[f] = string(b)
		for _, m := range defaultRE.FindAllStringSubmatch(string(b), -1) {
			if m[1] != m[2] {
				t.Errorf("%s: %s defaults from ${%s}", f, m[1], m[2])
			}
			if defaults[m[1]] == nil {
				defaults[m[1]] = map[string]string{}
			}
			defaults[m[1]][f] = m[3]
		}
	}
	for name, byFile := range defaults {
		var vals []string
		for _, v := range byFile {
			vals = append(vals, v)
		}
		if slices.Sort(vals); len(slices.Compact(vals)) > 1 {
			t.Errorf("the scripts disagree on the default of %s: %v", name, byFile)
		}
	}
	for _, name := range []string{"TLEARN", "MODEL", "DATA", "CACHE"} {
		if _, ok := defaults[name]["submit.sh"]; !ok {
			t.Errorf("submit.sh does not set %s at its top", name)
		}
	}

	plan := scriptCalls(t, "plan.sbatch", src["plan.sbatch"])
	if len(plan) != 1 || !plan[0].has("plan") {
		t.Errorf("plan.sbatch: want one tlearn extract --plan, got %d commands", len(plan))
	}
	ext := scriptCalls(t, "extract.sbatch", src["extract.sbatch"])
	if len(ext) != 1 {
		t.Fatalf("extract.sbatch: %d tlearn commands, want 1", len(ext))
	}
	shard := ext[0].value("shard")
	_, n, err := parseShard(shard)
	if err != nil || !strings.HasPrefix(shard, "auto/") {
		t.Fatalf("extract.sbatch: --shard %q, want auto/N with N written out (%v)", shard, err)
	}
	opts := sbatchOptions(src["extract.sbatch"])
	idx, err := arrayIndices(opts["--array"])
	if err != nil || len(idx) != n || idx[0] != 0 || idx[len(idx)-1] != n-1 {
		t.Errorf("extract.sbatch: #SBATCH --array=%s (%v), want the %d indices 0-%d of --shard %s", opts["--array"], err, n, n-1, shard)
	}
	if _, ok := opts["--cpus-per-task"]; !ok || ext[0].value("threads") != "${SLURM_CPUS_PER_TASK:-1}" {
		t.Errorf("extract.sbatch: want #SBATCH --cpus-per-task and --threads ${SLURM_CPUS_PER_TASK:-1}, got %q", ext[0].value("threads"))
	}
	merge := scriptCalls(t, "merge.sbatch", src["merge.sbatch"])
	if len(merge) != 2 || !merge[0].has("check") || merge[1].has("check") {
		t.Errorf("merge.sbatch: want tlearn cache merge --check, then cache merge")
	}
	for _, c := range append(append(plan, ext...), merge...) {
		if v := c.value("cache"); c.cmd == "extract" && v != "$CACHE" {
			t.Errorf("%s --cache %s, want $CACHE", c.cmd, v)
		}
		if c.cmd == "cache merge" && c.args[0] != "$CACHE" {
			t.Errorf("cache merge %s, want $CACHE", c.args[0])
		}
	}

	// submit.sh: the plan, the array after it, the merge after every task.
	sub := src["submit.sh"]
	submits := func(script string) []string {
		var lines []string
		for _, l := range strings.Split(sub, "\n") {
			if strings.Contains(l, "$(submit ") && strings.Contains(l, `"$here/`+script+`"`) {
				lines = append(lines, l)
			}
		}
		return lines
	}
	if m := submits("merge.sbatch"); len(m) != 1 || !strings.Contains(m[0], `--dependency=afterany:"$shards"`) || strings.Contains(m[0], "afterok") {
		t.Errorf("submit.sh submits merge.sbatch with %q, want one --dependency=afterany:\"$shards\" (afterok waits forever after a failed task)", m)
	}
	var afterPlan int
	for _, l := range submits("extract.sbatch") {
		if strings.Contains(l, `--dependency=afterok:"$plan" --kill-on-invalid-dep=yes`) {
			afterPlan++
		}
	}
	if afterPlan != 1 {
		t.Errorf("submit.sh: the array does not wait for the plan with afterok (cancelled when the plan fails): %q", submits("extract.sbatch"))
	}
	if !strings.Contains(sub, "sbatch --parsable") {
		t.Error("submit.sh: sbatch without --parsable")
	}
}

// TestREADMECommands parses the tlearn commands that the README's section
// on clusters shows, and checks that it names every runbook file.
func TestREADMECommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Running the caching job on a cluster\n")
	if !ok {
		t.Fatal(`README.md has no section "Running the caching job on a cluster"`)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	n := 0
	for _, line := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(line, "tlearn ") {
			continue
		}
		words, err := shellWords(line)
		if err == nil {
			_, err = parseTlearn(words)
		}
		if err != nil {
			t.Errorf("README: %s: %v", line, err)
		}
		n++
	}
	if n < 3 {
		t.Errorf("README's section shows %d tlearn commands, want the plan, a shard and the merge", n)
	}
	for _, dir := range []string{"slurm", "k8s"} {
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			if !strings.Contains(sec, "`"+f.Name()+"`") {
				t.Errorf("README's section does not name deploy/%s/%s", dir, f.Name())
			}
		}
	}
}
