// Package blobsrc reads datasets from object storage for package dataset:
// it registers dataset.Stores for s3://, gs:// and file:// URLs, opened
// through gocloud.dev/blob (s3blob, gcsblob, fileblob), so that
// dataset.OpenData and dataset.FromListing accept such URLs in a program
// that imports it (cmd/tlearn does).
//
// A URL names a bucket prefix laid out as a folder of class folders:
// s3://bucket/prefix/cat/1.jpg. Credentials and endpoints come the
// drivers' standard ways: for s3://, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_REGION (or ~/.aws), and for S3-compatible
// stores the URL's query (?endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true);
// for gs://, Application Default Credentials; file:// needs none. Opening
// checks, within a short timeout, that the bucket exists and can be
// listed, and names the URL in every error: a bucket that does not exist,
// denied access, an endpoint that does not answer.
//
// It holds the only imports of gocloud.dev (and, through it, of the cloud
// SDKs), so that packages that read folders alone do not link them. It
// must not import any tlearn package but dataset and internal/fsutil.
package blobsrc
