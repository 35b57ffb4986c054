package dataset

import (
	"context"
	"errors"
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
// bucket prefix laid out the same way, one "folder" of images per class
// (s3://bucket/prefix/cat/1.jpg; see Store and dataset/blobsrc). A URL's
// listing follows Open's rules (openStoreSource) and is read once, page by
// page; its images are read from the bucket. The caller closes the Source.
func OpenData(ctx context.Context, data string, s Settings) (*Source, error) {
	if !IsURL(data) {
		return Open(data, s)
	}
	st, err := openStore(ctx, data)
	if err != nil {
		return nil, err
	}
	src, err := openStoreSource(ctx, data, st, s)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return src, nil
}

// FromListing rebuilds the Source that l was listed from, without listing
// the data again: a folder must still exist; a URL's bucket is opened (and
// checked readable). The caller closes the Source.
func FromListing(ctx context.Context, l Listing, s Settings) (*Source, error) {
	if len(l.Classes) < 2 || len(l.Items) == 0 {
		return nil, fmt.Errorf("dataset: the listing of %s has %d classes and %d images: not a dataset", l.Data, len(l.Classes), len(l.Items))
	}
	for _, it := range l.Items {
		if it.Label < 0 || it.Label >= len(l.Classes) {
			return nil, fmt.Errorf("dataset: the listing of %s gives %s label %d of %d classes", l.Data, it.Path, it.Label, len(l.Classes))
		}
	}
	src := &Source{Dir: l.Data, Classes: l.Classes, Items: l.Items, Skipped: l.Skipped, maxPixels: s.maxPixels()}
	if IsURL(l.Data) {
		st, err := openStore(ctx, l.Data)
		if err != nil {
			return nil, err
		}
		src.store = st
		return src, nil
	}
	if err := CheckComplete(l.Data); err != nil {
		return nil, err
	}
	if err := checkDir(l.Data); err != nil {
		return nil, err
	}
	return src, nil
}

// Close releases what the Source holds open: the bucket of a Source in
// object storage (its images cannot be read after). A folder's Source holds
// nothing. Close is idempotent.
func (s *Source) Close() error {
	if s.store == nil {
		return nil
	}
	return s.store.Close()
}
