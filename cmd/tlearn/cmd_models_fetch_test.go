package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/models/fetch"
	"github.com/urfave/cli/v2"
)

// fetchApp is an app with only the fetch command, so that this test does
// not depend on where `models` lists its subcommands.
func fetchApp(stdout *bytes.Buffer) *cli.App {
	return appWith(stdout, os.Stderr, modelsFetchCommand())
}

func TestModelsFetchCommand(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	body := []byte("not a real model; the test run is skipped")
	tw.WriteHeader(&tar.Header{Name: "vgg16/vgg16.onnx", Mode: 0o644, Size: int64(len(body))})
	tw.Write(body)
	tw.Close()
	zw.Close()
	archive := buf.Bytes()
	sum := sha256.Sum256(archive)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(archive))
	}))
	defer ts.Close()
	dir := t.TempDir()
	want := filepath.Join(dir, "vgg16-12", "vgg16", "vgg16.onnx")
	// A server that accepts connections and never says a word: the TLS
	// handshake of an https URL waits for it until --connect-timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	for _, tc := range []struct {
		desc    string
		args    []string
		want    string // stdout
		wantErr string
		usage   bool
		within  time.Duration // when set, the command must end within it
	}{
		{desc: "flags after the name", args: []string{"fetch", "vgg16", "--url", ts.URL + "/vgg16-12.tar.gz", "--sha256=" + hex.EncodeToString(sum[:]),
			"--dir", dir, "--no-verify-run", "-q"}, want: want + "\n"},
		{desc: "flags before the name, reusing the download", args: []string{"fetch", "--url", ts.URL + "/x.tar.gz", "--sha256", hex.EncodeToString(sum[:]),
			"--dir", dir, "--no-verify-run", "--quiet", "vgg16-12"}, want: want + "\n"},
		{desc: "wrong sha256", args: []string{"fetch", "vgg16", "--url", ts.URL + "/x.tar.gz", "--sha256", strings.Repeat("0", 64),
			"--dir", t.TempDir(), "--no-verify-run", "-q"}, wantErr: "does not match"},
		{desc: "unknown model", args: []string{"fetch", "vgg19"}, wantErr: "unknown download", usage: true},
		{desc: "no model", args: []string{"fetch"}, wantErr: "want one model name", usage: true},
		{desc: "unknown flag", args: []string{"fetch", "vgg16", "--nope"}, wantErr: "unknown flag --nope", usage: true},
		{desc: "missing value", args: []string{"fetch", "vgg16", "--dir"}, wantErr: "needs a value", usage: true},
		{desc: "unreachable within --connect-timeout", args: []string{"fetch", "vgg16", "--url", "https://" + silent.Addr().String() + "/vgg16-12.tar.gz",
			"--connect-timeout", "300ms", "--dir", t.TempDir(), "--no-verify-run", "-q"},
			wantErr: "could not reach the server", within: 1200 * time.Millisecond},
		{desc: "zero --connect-timeout", args: []string{"fetch", "vgg16", "--connect-timeout", "0s", "--dir", t.TempDir(), "--no-verify-run"},
			wantErr: "--connect-timeout must be positive", usage: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var stdout bytes.Buffer
			start := time.Now()
			err := fetchApp(&stdout).RunContext(context.Background(), append([]string{"tlearn"}, tc.args...))
			if took := time.Since(start); tc.within > 0 && took > tc.within {
				t.Errorf("ended after %v, want within %v", took, tc.within)
			}
			if tc.wantErr != "" {
				var ue usageError
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.As(err, &ue) != tc.usage {
					t.Fatalf("err = %v, want %q (usage error: %v)", err, tc.wantErr, tc.usage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if stdout.String() != tc.want {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.want)
			}
		})
	}
}

func TestFetchLines(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := &fetchLines{w: &out, name: "vgg16-12.tar.gz"}
	p.Start(fetch.DownloadPhase, 512e6, 200e6)
	p.Add(1000)
	p.Finish()
	p.Log("sha256 verified")
	got := out.String()
	for _, want := range []string{"downloading vgg16-12.tar.gz (512.0 MB) from 200.0 MB\n", "  200.0 MB of 512.0 MB (39%), ", "/s, ETA ", "sha256 verified\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q lacks %q", got, want)
		}
	}
}

func TestFetchAdvice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: got 3 bytes", fetch.ErrDownloadMismatch), "(check --url and --sha256, or try again)"},
		{fmt.Errorf("%w: 4 bytes", fetch.ErrOtherSize), "(check --url and --sha256)"},
		{fmt.Errorf("%w at 1 kB", fetch.ErrInterrupted), "(run the same command again to resume)"},
		{fmt.Errorf("%w: a.onnx, b.onnx", fetch.ErrSeveralModels), "`tlearn models prepare --onnx`)"},
		{fmt.Errorf("%w: /x", fetch.ErrFolderExists), "choose another --dir)"},
		{fmt.Errorf("%w: no home", fetch.ErrNoDir), "(set --dir)"},
		{fmt.Errorf("%w: dial tcp: i/o timeout", fetch.ErrUnreachable), "(check the network or --url, or raise --connect-timeout)"},
	} {
		got := withFetchAdvice(tc.err)
		if !errors.Is(got, tc.err) || !strings.HasPrefix(got.Error(), tc.err.Error()) || !strings.HasSuffix(got.Error(), tc.want) {
			t.Errorf("withFetchAdvice(%v) = %v, want it with %q", tc.err, got, tc.want)
		}
	}
	other := errors.New("fetch: HTTP 404")
	if got := withFetchAdvice(other); got != other {
		t.Errorf("withFetchAdvice(%v) = %v, want it unchanged", other, got)
	}
}
