package main

import (
	// Registers the s3://, gs:// and file:// datasets of --data.
	_ "github.com/tlearn/tlearn/dataset/blobsrc"
)

// dataUsage is the usage of --data where a URL of object storage is
// accepted as well as a folder.
const dataUsage = "dataset `DIR` with one sub-folder of images per class, or the URL of a bucket prefix laid out the same way (s3://bucket/prefix, gs://bucket/prefix, file:///path; see README, \"Images from object storage\")"
