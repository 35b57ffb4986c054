package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region the server answers for and URL names.
const Region = "us-east-1"

// Server is a running versitygw.
type Server struct {
	// Endpoint is its base URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are its root user's keys.
	AccessKey, SecretKey string
	// Dir is the posix backend's folder: one sub-folder per bucket.
	Dir string

	client *s3.Client
	stop   func()
}

// Binary returns the path of .tools/versitygw in the module root above the
// test's working directory, or "" when it is not there.
func Binary() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".tools", "versitygw")
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p
			}
			return ""
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
}

// Start starts versitygw for t and stops it when t ends. It skips t where
// the binary is missing.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("s3test: .tools/versitygw is missing: run make setup (scripts/setup.sh builds the S3 server of these tests)")
	}
	s := &Server{AccessKey: "tlearn-test-access", SecretKey: "tlearn-test-secret-0123456789", Dir: t.TempDir()}
	var lastErr error
	for range 3 { // a free port can be taken between Listen and the server's bind
		addr, err := freeAddr()
		if err != nil {
			t.Fatalf("s3test: %v", err)
		}
		if lastErr = s.start(t, bin, addr); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("s3test: %v", lastErr)
	}
	s.client = s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	return s
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start runs the server on addr and waits until its health endpoint
// answers; on failure the server is stopped and its output is in the error.
func (s *Server) start(t testing.TB, bin, addr string) error {
	var out bytes.Buffer
	cmd := exec.Command(bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--region", Region, "--health", "/health", "--quiet", "posix", s.Dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		})
	}
	s.Endpoint = "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.stop = stop
				t.Cleanup(stop)
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw on %s exited before answering (%v): %s", addr, err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("versitygw on %s did not answer within 30 s: %s", addr, out.String())
		}
	}
}

// Stop stops the server now (by its pid), for the tests of a server that
// goes away; Start's cleanup then does nothing more.
func (s *Server) Stop() { s.stop() }

// URL is the s3:// URL of prefix in bucket on this server, with the query
// that points gocloud's s3blob at it.
func (s *Server) URL(bucket, prefix string) string {
	return URLAt(s.Endpoint, bucket, prefix)
}

// URLAt is the s3:// URL of prefix in bucket at the S3 endpoint (a base
// URL, http://HOST:PORT).
func URLAt(endpoint, bucket, prefix string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + strings.TrimLeft(prefix, "/")
	}
	q := url.Values{"endpoint": {endpoint}, "region": {Region}, "use_path_style": {"true"}}
	return u + "?" + q.Encode()
}

// SetCredentials gives the SDKs of the code under test this server's keys
// through the standard environment variables, and hides ~/.aws from them.
func (s *Server) SetCredentials(t testing.TB) {
	SetKeys(t, s.AccessKey, s.SecretKey)
}

// SetKeys sets the AWS credential variables to the given keys (wrong ones
// for the tests of denied access) and hides ~/.aws and the EC2 metadata
// service, so that nothing but these keys is tried.
func SetKeys(t testing.TB, access, secret string) {
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": "",
		"AWS_REGION": Region, "AWS_PROFILE": "", "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

// CreateBucket makes a bucket through the S3 API.
func (s *Server) CreateBucket(t testing.TB, bucket string) {
	t.Helper()
	if _, err := s.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", bucket, err)
	}
}

// Put uploads data as the object key of bucket through the S3 API.
func (s *Server) Put(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	_, err := s.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("s3test: put %s/%s: %v", bucket, key, err)
	}
}

// Delete removes the object key of bucket through the S3 API.
func (s *Server) Delete(t testing.TB, bucket, key string) {
	t.Helper()
	if _, err := s.client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("s3test: delete %s/%s: %v", bucket, key, err)
	}
}

// UploadDir uploads every regular file below dir as prefix/REL (REL the
// slash-separated path below dir) and returns how many it uploaded.
func (s *Server) UploadDir(t testing.TB, dir, bucket, prefix string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if prefix != "" {
			key = strings.Trim(prefix, "/") + "/" + key
		}
		s.Put(t, bucket, key, data)
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("s3test: upload %s: %v", dir, err)
	}
	if n == 0 {
		t.Fatal(errors.New("s3test: upload " + dir + ": no files"))
	}
	return n
}
