package blobsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // the drivers of the schemes registered below
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
	"gocloud.dev/gcp"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// Schemes are the URL schemes this package registers with dataset.
var Schemes = []string{"s3", "gs", "file"}

func init() {
	for _, s := range Schemes {
		dataset.RegisterStore(s, Open)
	}
}

const (
	// probeTimeout bounds opening a bucket: the credentials, then the
	// first listing request. The SDKs' own retries against an endpoint
	// that does not answer take minutes.
	probeTimeout = 15 * time.Second
	// pageTimeout bounds one page of the listing (1000 objects).
	pageTimeout = 2 * time.Minute
	pageSize    = 1000
)

// store is a bucket prefix; keys are relative to the prefix.
type store struct {
	url    string // as given, for messages
	b      *blob.Bucket
	root   string // file:// only: the folder, to look at what is no regular file
	closer sync.Once
	err    error
}

// Open opens the bucket prefix that rawURL names (s3://bucket/prefix,
// gs://bucket/prefix, file:///folder) and checks, within probeTimeout,
// that it exists and can be listed. Its errors name rawURL and say what is
// wrong: no such bucket or folder, access denied, no answer.
func Open(ctx context.Context, rawURL string) (dataset.Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", rawURL, err)
	}
	bucketURL, prefix, root := rawURL, "", ""
	switch u.Scheme {
	case "file":
		// fileblob's bucket is the folder the path names.
		root = filepath.FromSlash(u.Path)
		if u.Host != "" && u.Host != "localhost" {
			// file://images/cat would name the folder /cat.
			return nil, fmt.Errorf("dataset: %s: a file:// URL names an absolute path: want file:///path/to/folder (three slashes)", rawURL)
		}
		if root == "" {
			return nil, fmt.Errorf("dataset: %s: no folder in the URL: want file:///path/to/folder", rawURL)
		}
	default:
		if u.Host == "" {
			return nil, fmt.Errorf("dataset: %s: no bucket name in the URL: want %s://bucket/prefix", rawURL, u.Scheme)
		}
		b := *u
		b.Path, b.RawPath = "", ""
		bucketURL = b.String()
		if p := strings.Trim(u.Path, "/"); p != "" {
			prefix = p + "/"
		}
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := checkGoogleCredentials(pctx, u); err != nil {
		return nil, fmt.Errorf("dataset: %s: no Google credentials (Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, or gcloud auth application-default login; ?anonymous=true for a public bucket): %w", rawURL, err)
	}
	b, err := blob.OpenBucket(pctx, bucketURL)
	if err != nil {
		if u.Scheme == "file" && errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("dataset: %s: folder %s does not exist", rawURL, root)
		}
		return nil, describe(ctx, rawURL, u, err)
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix)
	}
	ok, err := b.IsAccessible(pctx)
	if err == nil && !ok {
		err = fmt.Errorf("bucket %s does not exist", u.Host)
		if u.Scheme == "file" {
			err = fmt.Errorf("folder %s does not exist", root)
		}
		err = fmt.Errorf("dataset: %s: %w", rawURL, err)
	} else if err != nil {
		err = describe(ctx, rawURL, u, err)
	}
	if err != nil {
		return nil, errors.Join(err, b.Close())
	}
	return &store{url: rawURL, b: b, root: root}, nil
}

// checkGoogleCredentials looks for the Application Default Credentials of
// a gs:// URL that needs them. gcsblob, when it finds none, prints a
// warning on stdout (where tlearn writes its records) and goes on with
// empty credentials, which fail later with a message about private keys.
func checkGoogleCredentials(ctx context.Context, u *url.URL) error {
	q := u.Query()
	if u.Scheme != "gs" || q.Get("anonymous") == "true" || q.Get("access_id") == "-" ||
		os.Getenv("STORAGE_EMULATOR_HOST") != "" || os.Getenv("STORAGE_EMULATOR_HOST_GRPC") != "" {
		return nil
	}
	_, err := gcp.DefaultCredentials(ctx)
	return err
}

// describe names rawURL in err and says what it means when it is one of
// the usual problems.
func describe(ctx context.Context, rawURL string, u *url.URL, err error) error {
	var status interface{ HTTPStatusCode() int }
	var api interface{ ErrorCode() string }
	var netErr *net.OpError
	var dnsErr *net.DNSError
	code := gcerrors.Code(err)
	denied := code == gcerrors.PermissionDenied ||
		(errors.As(err, &status) && (status.HTTPStatusCode() == 401 || status.HTTPStatusCode() == 403)) ||
		(errors.As(err, &api) && deniedCodes[api.ErrorCode()])
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("dataset: %s: %w", rawURL, err)
	case denied:
		return fmt.Errorf("dataset: %s: access denied (check the credentials: %s; they must allow listing and reading the bucket): %w", rawURL, credentialsHint(u.Scheme), err)
	case code == gcerrors.NotFound:
		return fmt.Errorf("dataset: %s: bucket %s does not exist: %w", rawURL, u.Host, err)
	case u.Scheme == "s3" && noRegion(err):
		return fmt.Errorf("dataset: %s: no usable AWS region (set AWS_REGION, or add ?region=us-east-1 to the URL): %w", rawURL, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("dataset: %s: the storage did not answer within %v (is the endpoint right and reachable?): %w", rawURL, probeTimeout, err)
	case errors.As(err, &dnsErr) || errors.As(err, &netErr):
		return fmt.Errorf("dataset: %s: cannot reach the storage endpoint: %w", rawURL, err)
	}
	return fmt.Errorf("dataset: %s: %w", rawURL, err)
}

// noRegion reports whether err is the AWS SDK's, or the server's, about a
// missing region: none in the URL, the environment or ~/.aws/config.
func noRegion(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Invalid region") || strings.Contains(msg, `region "" is wrong`) ||
		strings.Contains(msg, "region is required")
}

// deniedCodes are the S3 error codes of keys that are wrong, unknown or
// expired. versitygw answers an unknown access key with 404
// XAdminUserNotFound, where AWS answers 403 InvalidAccessKeyId.
var deniedCodes = map[string]bool{
	"AccessDenied": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
	"InvalidToken": true, "ExpiredToken": true, "XAdminUserNotFound": true,
}

func credentialsHint(scheme string) string {
	switch scheme {
	case "s3":
		return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws"
	case "gs":
		return "Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS or gcloud auth application-default login"
	}
	return "the folder's permissions"
}

// List reads the listing page by page, each page within pageTimeout.
func (s *store) List(ctx context.Context, fn func(dataset.Object) error) error {
	token := blob.FirstPageToken
	u, _ := url.Parse(s.url)
	for {
		pctx, cancel := context.WithTimeout(ctx, pageTimeout)
		objs, next, err := s.b.ListPage(pctx, token, pageSize, nil)
		cancel()
		if err != nil {
			return describe(ctx, s.url, u, err)
		}
		for _, o := range objs {
			if o.IsDir { // only with a delimiter, which List does not use
				continue
			}
			obj := dataset.Object{Key: o.Key, Size: o.Size, ModTime: o.ModTime}
			if s.root != "" {
				s.fileObject(o, &obj)
			}
			if err := fn(obj); err != nil {
				return err
			}
		}
		if len(next) == 0 {
			return nil
		}
		token = next
	}
}

// fileObject makes a file:// object what dataset.Open makes of the file:
// fileblob lists symbolic links, pipes and devices as objects, with the
// link's own size.
func (s *store) fileObject(o *blob.ListObject, obj *dataset.Object) {
	var fi os.FileInfo
	if !o.As(&fi) || fi.Mode().IsRegular() {
		return
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Stat(filepath.Join(s.root, filepath.FromSlash(o.Key)))
		switch {
		case err != nil:
			obj.NotRegular = "broken symbolic link"
			return
		case target.IsDir():
			obj.NotRegular = "symbolic link to a folder (not followed)"
			return
		}
		fi = target
		obj.Size, obj.ModTime = fi.Size(), fi.ModTime()
		if fi.Mode().IsRegular() {
			return
		}
	}
	obj.NotRegular = fsutil.Kind(fi.Mode()) + ", not a regular file"
}

// NewRangeReader reads a range of the object key; a missing object's error
// wraps fs.ErrNotExist.
func (s *store) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	r, err := s.b.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("%w (deleted since it was listed?): %w", fs.ErrNotExist, err)
		}
		return nil, err
	}
	return r, nil
}

// Close closes the bucket; a second Close does nothing.
func (s *store) Close() error {
	s.closer.Do(func() { s.err = s.b.Close() })
	return s.err
}
