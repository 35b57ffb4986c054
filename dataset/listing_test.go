package dataset

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestIsURL(t *testing.T) {
	for data, want := range map[string]bool{
		"s3://bucket/prefix": true, "gs://b": true, "file:///tmp/x": true,
		"images": false, "/abs/images": false, "c:/x": false, "s3:/x": false, "./s3://x": false,
	} {
		if got := IsURL(data); got != want {
			t.Errorf("IsURL(%q) = %v, want %v", data, got, want)
		}
	}
}

func TestFromListingRebuildsTheSource(t *testing.T) {
	dir := makeDataset(t, map[string]int{"cat/a.png": 8, "cat/b.png": 8, "dog/a.png": 8, "dog/b.png": 9, "dog/c/d.png": 8})
	src, err := OpenData(context.Background(), dir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := FromListing(context.Background(), src.Listing(), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Listing(), src.Listing()) || again.Path(4) != src.Path(4) {
		t.Fatalf("rebuilt %+v, want %+v", again.Listing(), src.Listing())
	}
	bad := src.Listing()
	bad.Items = append([]Item(nil), bad.Items...)
	bad.Items[0].Label = 7
	if _, err := FromListing(context.Background(), bad, Settings{}); err == nil || !strings.Contains(err.Error(), "label 7 of 2 classes") {
		t.Fatalf("a listing with a bad label: %v", err)
	}
	bad = src.Listing()
	bad.Data = dir + "-gone"
	if _, err := FromListing(context.Background(), bad, Settings{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("a listing of a folder that is gone: %v", err)
	}
}
