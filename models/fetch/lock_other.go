//go:build !unix

package fetch

// lockDownload is a no-op where flock(2) does not exist; concurrent fetches
// of the same archive are then the user's to avoid.
func lockDownload(string) (func(), error) { return func() {}, nil }
