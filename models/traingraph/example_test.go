package traingraph_test

import (
	"fmt"

	"github.com/tlearn/tlearn/models/traingraph"
)

// The train-step graph of a small block5 and head: the interface a trainer
// binds tensors to.
func ExampleTrainStep() {
	tg, err := traingraph.TrainStep(traingraph.Spec{
		Channels: 8, Height: 4, Width: 4, // block4_pool maps [8,4,4]
		Hidden: 16, Classes: 3, Dropout: true,
		Optimizer:    traingraph.OptimizerAdam,
		FreezeBlock5: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("inputs:", tg.Inputs)
	fmt.Println("outputs:", tg.Outputs)
	for _, p := range tg.Params[:1] {
		fmt.Println(p.Name, p.Shape, p.Layout, "trainable:", p.Trainable)
	}
	// Output:
	// inputs: [maps labels dropout_mask lr.head adam.v_scale block5_conv1.weight block5_conv1.bias block5_conv2.weight block5_conv2.bias block5_conv3.weight block5_conv3.bias hidden.weight hidden.bias output.weight output.bias hidden.weight.m hidden.weight.v hidden.bias.m hidden.bias.v output.weight.m output.weight.v output.bias.m output.bias.v]
	// outputs: [loss logits hidden.weight.new hidden.weight.m.new hidden.weight.v.new hidden.bias.new hidden.bias.m.new hidden.bias.v.new output.weight.new output.weight.m.new output.weight.v.new output.bias.new output.bias.m.new output.bias.v.new]
	// block5_conv1.weight [3 3 8 8] HWIO trainable: false
}
