package dataset

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// Listing is what Open found in a dataset: enough to rebuild the Source
// without listing the data again. `extract --plan` writes it into a cache
// folder so that the shards of a cluster job read one listing instead of
// listing a million-object bucket once each.
type Listing struct {
	// Data is the dataset as given: a folder, or a URL (s3://, gs://,
	// file://) of a bucket prefix.
	Data    string    `json:"data"`
	Classes []string  `json:"classes"`
	Items   []Item    `json:"items"`
	Skipped []Skipped `json:"skipped,omitempty"`
}

// Listing returns what s was listed from, sharing s's slices.
func (s *Source) Listing() Listing {
	return Listing{Data: s.Dir, Classes: s.Classes, Items: s.Items, Skipped: s.Skipped}
}

// IsURL reports whether data names a dataset by URL (scheme://...) rather
// than a local folder.
func IsURL(data string) bool {
	u, err := url.Parse(data)
	return err == nil && len(u.Scheme) > 1 && strings.HasPrefix(data, u.Scheme+"://")
}

// OpenData lists the dataset data: a local folder (Open) or a URL of a
// bucket prefix laid out the same way, one "folder" of images per class.
// The caller closes the Source.
func OpenData(ctx context.Context, data string, s Settings) (*Source, error) {
	if !IsURL(data) {
		return Open(data, s)
	}
	return nil, fmt.Errorf("dataset: %s: datasets in object storage are not supported yet", data)
}

// FromListing rebuilds the Source that l was listed from, without listing
// the data again: a folder must still exist; a URL's bucket is opened. The
// caller closes the Source.
func FromListing(ctx context.Context, l Listing, s Settings) (*Source, error) {
	if IsURL(l.Data) {
		return nil, fmt.Errorf("dataset: %s: datasets in object storage are not supported yet", l.Data)
	}
	if err := CheckComplete(l.Data); err != nil {
		return nil, err
	}
	if err := checkDir(l.Data); err != nil {
		return nil, err
	}
	if len(l.Classes) < 2 || len(l.Items) == 0 {
		return nil, fmt.Errorf("dataset: the listing of %s has %d classes and %d images: not a dataset", l.Data, len(l.Classes), len(l.Items))
	}
	for _, it := range l.Items {
		if it.Label < 0 || it.Label >= len(l.Classes) {
			return nil, fmt.Errorf("dataset: the listing of %s gives %s label %d of %d classes", l.Data, it.Path, it.Label, len(l.Classes))
		}
	}
	return &Source{Dir: l.Data, Classes: l.Classes, Items: l.Items, Skipped: l.Skipped, maxPixels: s.maxPixels()}, nil
}

// Close releases what the Source holds open (a bucket); a folder's Source
// holds nothing.
func (s *Source) Close() error {
	return nil
}
