package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/progress"
)

// Preset is a known download: an ONNX Model Zoo archive with its size
// and sha256, so that a download is verified before anything reads it.
type Preset struct {
	Name   string // cache name: DIR/<Name>.tar.gz and DIR/<Name>/
	URL    string
	Size   int64
	SHA256 string
	Opset  int
}

// The ONNX Model Zoo keeps its archives in Git LFS: github.com redirects
// these URLs to its LFS media host, which serves byte ranges.
const zooVGG = "https://github.com/onnx/models/raw/main/validated/vision/classification/vgg/model/"

var presets = []Preset{
	{Name: "vgg16-12", URL: zooVGG + "vgg16-12.tar.gz", Size: 511942031, SHA256: "bab278d40411f29dfc2e9515c534d2871eb0393480b736855bfe7f73c312cbc6", Opset: 12},
	{Name: "vgg16-7", URL: zooVGG + "vgg16-7.tar.gz", Size: 512679010, SHA256: "586413f9108e2316ebf80c3aa484d55f995d693b153e4c90742750519a9e27be", Opset: 7},
}

// aliases maps a model family to its default variant.
var aliases = map[string]string{"vgg16": "vgg16-12"}

// Presets lists the known downloads, default variants first.
func Presets() []Preset { return append([]Preset(nil), presets...) }

// LookupPreset finds a download by variant ("vgg16-7") or family
// ("vgg16", which means its default variant, vgg16-12).
func LookupPreset(name string) (Preset, error) {
	key := strings.ToLower(strings.TrimSpace(name))
	if v, ok := aliases[key]; ok {
		key = v
	}
	for _, p := range presets {
		if p.Name == key {
			return p, nil
		}
	}
	names := make([]string, 0, len(presets)+len(aliases))
	for a := range aliases {
		names = append(names, a)
	}
	for _, p := range presets {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return Preset{}, fmt.Errorf("fetch: unknown download %q (known: %s)", name, strings.Join(names, ", "))
}

// Settings returns Settings for the preset; set Dir, Progress and the
// rest on the result.
func (p Preset) Settings() Settings {
	return Settings{Name: p.Name, URL: p.URL, Size: p.Size, SHA256: p.SHA256}
}

// DownloadPhase is the phase name under which Get reports each HTTP
// transfer to its progress.Reporter: Start(DownloadPhase, total, done)
// counts bytes (total -1 when unknown; done are the bytes already on disk
// from an interrupted download), Add the bytes written since.
const DownloadPhase = "download"

// Settings configure Get. URL and SHA256 are required; the zero value
// of every other field means its default.
type Settings struct {
	URL    string
	Size   int64  // expected bytes; 0 means not known in advance (the sha256 still decides)
	SHA256 string // expected hex digest of the archive; required
	// Name is the cache name: the archive is kept as DIR/<Name>.tar.gz and
	// unpacked into DIR/<Name>/. Default: the URL's file name without
	// .tar.gz or .tgz.
	Name string
	// Dir is the download folder. Default: DefaultDir().
	Dir string
	// Client does the HTTP requests and follows redirects (the zoo's URLs
	// redirect to GitHub's LFS host). Default: a client with connection
	// timeouts (ConnectTimeout) and no overall deadline, since the archives
	// are 0.5 GB.
	Client *http.Client
	// ConnectTimeout bounds each connection to a server of the default
	// Client: name resolution and TCP connect, then the TLS handshake, each
	// within it. It is no deadline on the download, which takes as long as
	// it keeps receiving. 0 means DefaultConnectTimeout; ignored with
	// Client. Whatever the client, when the first connection of a Get
	// fails, Get fails at once with ErrUnreachable (no retries: the server
	// is not there, e.g. no network).
	ConnectTimeout time.Duration
	// Attempts is how many requests in a row may fail without receiving a
	// byte before Get gives up (a request that made progress resets the
	// count); 0 means 5, 1 means no retry.
	Attempts int
	// Progress receives the transfers as DownloadPhase phases and a Log
	// line for each step (resuming, verifying, the result of each test
	// data set); nil means silent. Calls come from the goroutine that
	// called Get.
	Progress progress.Reporter
	// NoVerifyRun skips running the model under ONNX Runtime on the
	// archive's test_data_set_* folders. When it is false, ORT must be
	// initialized (ortlib.Init) before Get.
	NoVerifyRun bool
	// ORT are the session settings of the verification run.
	ORT ortlib.Options
}

// Errors that callers may branch on with errors.Is.
var (
	// ErrDownloadMismatch: the bytes received are not the expected archive
	// (size or sha256 differ); the partial file has been removed.
	ErrDownloadMismatch = errors.New("fetch: download does not match the expected archive")
	// ErrOtherSize: the server offers a file of another size than the
	// expected archive's; nothing was written.
	ErrOtherSize = errors.New("fetch: the server offers a file of another size")
	// ErrInterrupted: the download failed before it was complete, too
	// often in a row to retry; the partial file is kept, and fetching the
	// same archive again resumes it.
	ErrInterrupted = errors.New("fetch: download interrupted")
	// ErrUnsafeArchive: an archive entry would escape the target folder,
	// or the archive exceeds the unpack limits.
	ErrUnsafeArchive = errors.New("fetch: unsafe archive")
	// ErrSeveralModels: the archive holds more than one .onnx file, so Get
	// cannot tell which is the model.
	ErrSeveralModels = errors.New("fetch: the archive holds several .onnx files")
	// ErrFolderExists: the folder to unpack into exists and was not
	// unpacked by tlearn, so it is left alone.
	ErrFolderExists = errors.New("fetch: the folder exists and was not unpacked by tlearn")
	// ErrUnreachable: Get could not connect to the server (within
	// Settings.ConnectTimeout, or refused, or no such host) before any
	// connection of this call succeeded; nothing was written.
	ErrUnreachable = errors.New("fetch: could not reach the server")
	// ErrNoDir: Settings.Dir is empty and DefaultDir finds no folder.
	ErrNoDir = errors.New("fetch: no download folder")
	// ErrTestDataMismatch: the model's outputs differ from the archive's
	// expected test outputs.
	ErrTestDataMismatch = errors.New("fetch: model output differs from the archive's test data")
)

// DefaultDir is where downloads go: $XDG_CACHE_HOME/tlearn/models,
// or ~/.cache/tlearn/models when that variable is unset.
func DefaultDir() (string, error) {
	// The XDG spec says relative values are to be ignored.
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "tlearn", "models"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%w: no $XDG_CACHE_HOME and no home folder: %w", ErrNoDir, err)
	}
	return filepath.Join(home, ".cache", "tlearn", "models"), nil
}

// DefaultConnectTimeout is Settings.ConnectTimeout's default: long enough
// for a slow network, short enough to tell an absent one.
const DefaultConnectTimeout = 30 * time.Second

const (
	defaultAttempts = 5
	// stallTimeout cancels a request that receives nothing for this long;
	// the download then resumes with a new request.
	stallTimeout = 60 * time.Second
	// syncEvery bounds how much of a partial download a crash can leave
	// unwritten: the part file is fsynced after this many bytes.
	syncEvery     = 64 << 20
	partSuffix    = ".part"
	archiveSuffix = ".tar.gz"
)

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (s Settings) withDefaults() (Settings, error) {
	if s.URL == "" {
		return s, errors.New("fetch: no URL")
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, fmt.Errorf("fetch: %q is not an http(s) URL", s.URL)
	}
	s.SHA256 = strings.ToLower(strings.TrimSpace(s.SHA256))
	if !sha256Hex.MatchString(s.SHA256) {
		return s, fmt.Errorf("fetch: %s: sha256 %q is not 64 hex digits; an archive is only used after it is verified", s.URL, s.SHA256)
	}
	if s.Size < 0 {
		return s, fmt.Errorf("fetch: %s: negative size %d", s.URL, s.Size)
	}
	if s.Name == "" {
		base := path.Base(u.Path)
		for _, ext := range []string{archiveSuffix, ".tgz"} {
			base = strings.TrimSuffix(base, ext)
		}
		s.Name = base
	}
	if s.Name == "" || s.Name == "." || s.Name == "/" || !filepath.IsLocal(s.Name) || strings.ContainsAny(s.Name, `/\`) {
		return s, fmt.Errorf("fetch: %s: cannot name the download (%q); set a name", s.URL, s.Name)
	}
	if s.Dir == "" {
		if s.Dir, err = DefaultDir(); err != nil {
			return s, err
		}
	}
	if s.ConnectTimeout < 0 {
		return s, fmt.Errorf("fetch: negative connect timeout %v", s.ConnectTimeout)
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if s.Client == nil {
		s.Client = defaultClient(s.ConnectTimeout)
	}
	if s.Attempts <= 0 {
		s.Attempts = defaultAttempts
	}
	s.Progress = progress.OrNop(s.Progress)
	return s, nil
}

// defaultClient bounds the connection (dial, then TLS handshake) by
// connect and the wait for the response's headers by stallTimeout, and
// nothing else: a 0.5 GB download may take long, as long as it progresses
// (transfer.copy stops a stalled body).
func defaultClient(connect time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	t.DialContext = d.DialContext
	t.TLSHandshakeTimeout = connect
	t.ResponseHeaderTimeout = stallTimeout
	return &http.Client{Transport: t}
}

// Get downloads an ONNX model archive into s.Dir, verifies its size and
// sha256, unpacks it into s.Dir/<Name>/ and returns the path of the .onnx
// model in it. Unless s.NoVerifyRun, it then runs the model under ONNX
// Runtime on the archive's test data sets and fails with
// ErrTestDataMismatch (still returning the model path) when an output
// differs.
//
// Work already done is reused: a verified archive or unpacked folder is not
// downloaded again, and an interrupted download (DIR/<Name>.tar.gz.part)
// resumes with an HTTP Range request. Cancelling ctx keeps the partial file
// for the next call.
func Get(ctx context.Context, s Settings) (modelPath string, err error) {
	if s, err = s.withDefaults(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return "", fmt.Errorf("fetch: create %s: %w", s.Dir, err)
	}
	unpacked := filepath.Join(s.Dir, s.Name)
	// One writer of the unpacked folder and of its archive, so that two
	// fetches cannot interleave their writes to one part file. The lock
	// file, .<Name>.lock, is the one an older tlearn took here.
	lock, err := fsutil.LockOutput(unpacked)
	if err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	defer lock.Unlock()
	// Under the lock, an unpack folder can only be a killed run's; the
	// part file is not a temporary but the download to resume.
	removed, err := lock.RemoveStale(filepath.Join(s.Dir, s.Name+archiveSuffix))
	for _, r := range removed {
		s.Progress.Log("removed " + r + ", left by an interrupted earlier run")
	}
	if err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}

	model, ok, err := readUnpacked(unpacked, s.SHA256)
	if err != nil {
		return "", err
	}
	if ok {
		s.Progress.Log(fmt.Sprintf("already downloaded and unpacked: %s", unpacked))
	} else {
		archive, err := download(ctx, s)
		if err != nil {
			return "", err
		}
		s.Progress.Log(fmt.Sprintf("unpacking %s", archive))
		if model, err = unpackModel(ctx, archive, unpacked, s.SHA256); err != nil {
			return "", err
		}
	}
	if s.NoVerifyRun {
		return model, nil
	}
	return model, verifyUnpacked(ctx, s, unpacked, model)
}

// download returns the path of the verified archive, downloading or
// resuming it when needed.
func download(ctx context.Context, s Settings) (string, error) {
	archive := filepath.Join(s.Dir, s.Name+archiveSuffix)
	if _, err := os.Stat(archive); err == nil {
		s.Progress.Log(fmt.Sprintf("checking %s", archive))
		size, sum, err := hashFile(ctx, archive)
		if err != nil {
			return "", err
		}
		if sum == s.SHA256 && (s.Size == 0 || size == s.Size) {
			s.Progress.Log(fmt.Sprintf("already downloaded: %s (sha256 verified)", archive))
			return archive, nil
		}
		s.Progress.Log(fmt.Sprintf("%s is not the expected archive (%d bytes, sha256 %s); downloading it again", archive, size, sum))
		if err := os.Remove(archive); err != nil {
			return "", fmt.Errorf("fetch: remove %s: %w", archive, err)
		}
	}
	part := archive + partSuffix
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("fetch: open %s: %w", part, err)
	}
	t := &transfer{s: s, f: f, part: part, h: sha256.New()}
	err = t.run(ctx)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("fetch: write %s: %w", part, cerr)
	}
	if err != nil {
		// An empty part file is no progress worth keeping.
		if st, serr := os.Stat(part); errors.Is(err, ErrDownloadMismatch) || (serr == nil && st.Size() == 0) {
			os.Remove(part)
		}
		return "", err
	}
	if err := os.Rename(part, archive); err != nil {
		return "", fmt.Errorf("fetch: rename %s: %w", part, err)
	}
	return archive, fsutil.SyncDir(s.Dir)
}

// hashFile returns the size and hex sha256 of a file.
func hashFile(ctx context.Context, name string) (int64, string, error) {
	f, err := fsutil.Open(name)
	if err != nil {
		return 0, "", fmt.Errorf("fetch: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return 0, "", fmt.Errorf("fetch: read %s: %w", name, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops a long copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// transfer is one download into a part file, over as many requests as it
// takes.
type transfer struct {
	s      Settings
	f      *os.File
	part   string
	h      hash.Hash // sha256 of f[:offset]
	offset int64
	synced int64
	// connected is set once a request of this transfer got a connection:
	// from then on a failed connection is retried.
	connected atomic.Bool
}

// errConnect marks a request that got no connection to the server.
type errConnect struct{ err error }

func (e errConnect) Error() string { return e.err.Error() }
func (e errConnect) Unwrap() error { return e.err }

// errRetry marks a failed request after which another one may succeed.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

func (t *transfer) run(ctx context.Context) error {
	if err := t.resume(ctx); err != nil {
		return err
	}
	failures := 0
	for t.s.Size == 0 || t.offset < t.s.Size {
		before := t.offset
		done, err := t.request(ctx)
		if err == nil && done {
			break
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return fmt.Errorf("fetch: %s: stopped at %s of %s; %s is kept, and fetching again resumes from it: %w",
				t.s.URL, fsutil.FormatBytes(t.offset), formatSize(t.s.Size), t.part, ctx.Err())
		}
		var unreachable errConnect
		if errors.As(err, &unreachable) {
			if !t.connected.Load() {
				return fmt.Errorf("%w: %w (connect timeout %s)", ErrUnreachable, unreachable.err, t.s.ConnectTimeout)
			}
			err = errRetry(unreachable)
		}
		var retry errRetry
		if !errors.As(err, &retry) {
			return err
		}
		if t.offset > before {
			failures = 0
		} else {
			failures++
		}
		if failures >= t.s.Attempts || t.s.Attempts == 1 {
			return fmt.Errorf("%w at %s of %s from %s (%w); %s is kept, and fetching again resumes it",
				ErrInterrupted, fsutil.FormatBytes(t.offset), formatSize(t.s.Size), t.s.URL, retry.err, t.part)
		}
		t.s.Progress.Log(fmt.Sprintf("connection lost at %s (%v); resuming", fsutil.FormatBytes(t.offset), retry.err))
		if failures > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(failures) * time.Second):
			}
		}
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("fetch: write %s: %w", t.part, err)
	}
	sum := hex.EncodeToString(t.h.Sum(nil))
	if (t.s.Size != 0 && t.offset != t.s.Size) || sum != t.s.SHA256 {
		return fmt.Errorf("%w: %s: got %d bytes with sha256 %s, expected %s with sha256 %s; removed %s",
			ErrDownloadMismatch, t.s.URL, t.offset, sum, formatSize(t.s.Size), t.s.SHA256, t.part)
	}
	t.s.Progress.Log(fmt.Sprintf("sha256 verified: %s", sum))
	return nil
}

// resume takes over the bytes an earlier run left in the part file.
func (t *transfer) resume(ctx context.Context) error {
	st, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("fetch: %s: %w", t.part, err)
	}
	n := st.Size()
	if n == 0 {
		return nil
	}
	if t.s.Size != 0 && n > t.s.Size {
		t.s.Progress.Log(fmt.Sprintf("%s is larger than the archive; starting over", t.part))
		return t.restart()
	}
	t.s.Progress.Log(fmt.Sprintf("resuming %s at %s of %s", t.part, fsutil.FormatBytes(n), formatSize(t.s.Size)))
	if _, err := io.Copy(t.h, ctxReader{ctx, io.NewSectionReader(t.f, 0, n)}); err != nil {
		return fmt.Errorf("fetch: read %s: %w", t.part, err)
	}
	if _, err := t.f.Seek(n, io.SeekStart); err != nil {
		return fmt.Errorf("fetch: %s: %w", t.part, err)
	}
	t.offset, t.synced = n, n
	return nil
}

func (t *transfer) restart() error {
	if err := t.f.Truncate(0); err != nil {
		return fmt.Errorf("fetch: truncate %s: %w", t.part, err)
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("fetch: %s: %w", t.part, err)
	}
	t.h.Reset()
	t.offset, t.synced = 0, 0
	return nil
}

// request does one GET from t.offset and appends what it receives. It
// reports done when the server says the file ends at t.offset.
func (t *transfer) request(ctx context.Context) (done bool, err error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var gotConn atomic.Bool
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		gotConn.Store(true)
		t.connected.Store(true)
	}})
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, t.s.URL, nil)
	if err != nil {
		return false, fmt.Errorf("fetch: %s: %w", t.s.URL, err)
	}
	req.Header.Set("User-Agent", "tlearn-models-fetch")
	// Byte ranges count stored bytes: a transparently gzip-decoded body
	// would shift them.
	req.Header.Set("Accept-Encoding", "identity")
	if t.offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", t.offset))
	}
	resp, err := t.s.Client.Do(req)
	if err != nil {
		if !gotConn.Load() && ctx.Err() == nil {
			return false, errConnect{err}
		}
		return false, errRetry{err}
	}
	defer resp.Body.Close()

	total := int64(-1)
	switch {
	case resp.StatusCode == http.StatusOK:
		total = resp.ContentLength
		// A body of the wrong size (a proxy's error page) is refused below;
		// it must not cost the part file first.
		wrongSize := t.s.Size != 0 && total >= 0 && total != t.s.Size
		if t.offset > 0 && !wrongSize {
			t.s.Progress.Log("the server ignored the range request; downloading from the start")
			if err := t.restart(); err != nil {
				return false, err
			}
		}
	case resp.StatusCode == http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != t.offset {
			t.s.Progress.Log(fmt.Sprintf("the server sent range %q for a request from byte %d; downloading from the start",
				resp.Header.Get("Content-Range"), t.offset))
			if err := t.restart(); err != nil {
				return false, err
			}
			return false, errRetry{errors.New("unusable range response")}
		}
		total = size
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && t.offset > 0:
		// The part file may already hold every byte (a run stopped after
		// the last write); the sha256 check decides.
		if _, size, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && size == t.offset {
			return true, nil
		}
		t.s.Progress.Log(fmt.Sprintf("the server refused to resume at byte %d; downloading from the start", t.offset))
		if err := t.restart(); err != nil {
			return false, err
		}
		return false, errRetry{fmt.Errorf("HTTP %s", resp.Status)}
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return false, errRetry{fmt.Errorf("HTTP %s", resp.Status)}
	default:
		return false, fmt.Errorf("fetch: %s: HTTP %s", t.s.URL, resp.Status)
	}
	if t.s.Size != 0 && total >= 0 && total != t.s.Size {
		return false, fmt.Errorf("%w: %s: %d bytes, expected %d", ErrOtherSize, t.s.URL, total, t.s.Size)
	}
	want := t.s.Size
	if want == 0 {
		want = total
	}
	t.s.Progress.Start(DownloadPhase, int(want), int(t.offset))
	defer t.s.Progress.Finish()
	err = t.copy(resp.Body, want, cancel)
	if err != nil {
		return false, err
	}
	if want > 0 && t.offset < want {
		return false, errRetry{io.ErrUnexpectedEOF}
	}
	return true, nil
}

// copy appends body to the part file until EOF, never beyond want bytes
// (when want > 0); cancel aborts the request when the body stalls.
func (t *transfer) copy(body io.Reader, want int64, cancel context.CancelFunc) error {
	stall := time.AfterFunc(stallTimeout, cancel)
	defer stall.Stop()
	buf := make([]byte, 256<<10)
	for {
		n, rerr := body.Read(buf)
		stall.Reset(stallTimeout)
		if n > 0 {
			if want > 0 && t.offset+int64(n) > want {
				return fmt.Errorf("%w: %s: the server sent more than the expected %d bytes; removed %s",
					ErrDownloadMismatch, t.s.URL, want, t.part)
			}
			if _, err := t.f.Write(buf[:n]); err != nil {
				return fmt.Errorf("fetch: write %s: %w", t.part, err)
			}
			t.h.Write(buf[:n])
			t.offset += int64(n)
			t.s.Progress.Add(n)
			if t.offset-t.synced >= syncEvery {
				if err := t.f.Sync(); err != nil {
					return fmt.Errorf("fetch: write %s: %w", t.part, err)
				}
				t.synced = t.offset
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return errRetry{rerr}
		}
	}
}

// parseContentRange reads "bytes START-END/SIZE" (SIZE may be "*", giving
// -1) and "bytes */SIZE" (START -1).
func parseContentRange(v string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	size = -1
	if sz != "*" {
		n, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false
		}
		size = n
	}
	if rng == "*" {
		return -1, size, true
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	return start, size, true
}

func formatSize(n int64) string {
	if n <= 0 {
		return "an unknown size"
	}
	return fsutil.FormatBytes(n)
}
