package head_test

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/tlearn/tlearn/head"
)

// Train a softmax head on features of two well-separated classes, then
// evaluate it. In tlearn the features come from a cache (cache.Open) and
// are memory-mapped; any []float32 works.
func ExampleTrain() {
	r := rand.New(rand.NewPCG(1, 2))
	makeSet := func(n int) *head.Data {
		d := &head.Data{Classes: []string{"cat", "dog"}}
		for i := range n {
			label := i % 2
			for range 4 {
				d.X = append(d.X, float32(4*label-2)+float32(r.NormFloat64()))
			}
			d.Y = append(d.Y, int32(label))
		}
		return d
	}
	train, val := makeSet(200), makeSet(50)

	s := head.Settings{Hidden: 16, LR: 1e-2, Epochs: 5, Seed: 1}
	res, err := head.Train(context.Background(), train, val, s, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := head.Evaluate(context.Background(), res.Weights, val, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d epochs, validation accuracy %.2f\n", len(res.History), rep.Accuracy)
	fmt.Println("dropout:", res.Settings.Dropout, "batch:", res.Settings.Batch)
	// Output:
	// 5 epochs, validation accuracy 1.00
	// dropout: 0.5 batch: 32
}
