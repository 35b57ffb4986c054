// Package s3test starts a real S3-compatible server for tests: versitygw
// (github.com/versity/versitygw, built by scripts/setup.sh into
// .tools/versitygw) on 127.0.0.1, on a free port, with its posix backend
// in a temporary folder and its own root keys; it stops the server by its
// pid when the test ends. A test skips, saying to run make setup, only
// where the binary is missing. Uploads go through the S3 API with the AWS
// SDK's own client, not through the code under test.
//
// Only tests import it; it must not import any tlearn package.
package s3test
