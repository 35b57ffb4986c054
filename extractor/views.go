package extractor

import (
	"fmt"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
)

// viewWriter writes the batches of a Loader with K views per image to a
// cache whose rows hold K views each. A batch holds consecutive views of
// consecutive rows, which are consecutive in the cache's [N,K,...] arrays,
// but it may end inside a row: the views of that row wait in carry for
// the next batch. Chunks hold whole batches (a chunk's rows × K is a
// multiple of the batch), so a row never spans two chunks.
type viewWriter struct {
	w            *cache.Writer
	rows         []int // cache rows of the Loader's items, in order
	k, dim, mapN int   // views, features and map values per view

	carryPos          int // the Loader item whose first views carry holds; -1: none
	carryN            int // views held
	carryF, carryMaps []float32
	labels            []int32
}

func newViewWriter(w *cache.Writer, rows []int, k, dim, mapN int) *viewWriter {
	return &viewWriter{
		w: w, rows: rows, k: k, dim: dim, mapN: mapN, carryPos: -1,
		carryF: make([]float32, 0, k*dim), carryMaps: make([]float32, 0, k*mapN),
	}
}

// write stores the batch b's outputs: feats holds b.Count×dim features,
// maps b.Count×mapN values (nil without maps).
func (v *viewWriter) write(b dataset.Batch, feats, maps []float32) error {
	j := 0
	for j < b.Count {
		pos := (b.Start + j) / v.k
		view := (b.Start + j) % v.k
		if view != 0 || (v.carryPos >= 0 && v.carryPos != pos) {
			if v.carryPos != pos || v.carryN != view {
				return fmt.Errorf("view %d of image %d follows %d views of image %d", view, pos, v.carryN, v.carryPos)
			}
		}
		if view == 0 && b.Count-j >= v.k {
			// Whole rows straight from the batch: the longest run of
			// consecutive cache rows within one chunk.
			n := 1
			row0 := v.rows[pos]
			for (n+1)*v.k <= b.Count-j && v.rows[pos+n] == row0+n && (row0+n)%v.w.Manifest().ChunkSize != 0 {
				n++
			}
			v.labels = v.labels[:0]
			for r := range n {
				v.labels = append(v.labels, int32(b.Labels[j+r*v.k]))
			}
			var mp []float32
			if maps != nil {
				mp = maps[j*v.mapN : (j+n*v.k)*v.mapN]
			}
			if err := v.w.Write(row0, feats[j*v.dim:(j+n*v.k)*v.dim], v.labels, mp); err != nil {
				return err
			}
			j += n * v.k
			continue
		}
		// The start or the rest of a row that the batch cuts: collect it.
		take := min(v.k-view, b.Count-j)
		if view == 0 {
			v.carryPos, v.carryN = pos, 0
			v.carryF, v.carryMaps = v.carryF[:0], v.carryMaps[:0]
		}
		v.carryF = append(v.carryF, feats[j*v.dim:(j+take)*v.dim]...)
		if maps != nil {
			v.carryMaps = append(v.carryMaps, maps[j*v.mapN:(j+take)*v.mapN]...)
		}
		v.carryN += take
		label := int32(b.Labels[j])
		j += take
		if v.carryN < v.k {
			continue
		}
		var mp []float32
		if maps != nil {
			mp = v.carryMaps
		}
		if err := v.w.Write(v.rows[pos], v.carryF, []int32{label}, mp); err != nil {
			return err
		}
		v.carryPos, v.carryN = -1, 0
	}
	return nil
}

// ArrayBytes is the size of the features.npy and maps.npy (0 without
// maps) that n images with views views each take in a cache, without
// their headers: what to tell a user before a long extraction.
func (e *Extractor) ArrayBytes(n, views int) (features, maps int64) {
	views = max(1, views)
	features = int64(n) * int64(views) * int64(e.spec.Features.Dim) * 4
	if e.maps != nil {
		side := int64(e.size / e.spec.Maps.Stride)
		maps = int64(n) * int64(views) * int64(e.spec.Maps.Channels) * side * side * 2
	}
	return features, maps
}
