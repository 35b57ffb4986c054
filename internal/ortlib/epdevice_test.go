package ortlib

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/models/onnxpb"
)

// TestSessionOptionsShape: onnxruntime_go's SessionOptions is the struct
// that sessionOptionsPtr reaches into; any other shape is refused.
func TestSessionOptionsShape(t *testing.T) {
	t.Parallel()
	if err := checkSessionOptionsShape(reflect.TypeFor[ort.SessionOptions]()); err != nil {
		t.Fatalf("onnxruntime_go changed: %v", err)
	}
	type OrtSessionOptions struct{}
	for _, tc := range []struct {
		desc string
		typ  reflect.Type
	}{
		{"two fields", reflect.TypeFor[struct {
			o *OrtSessionOptions
			n int
		}]()},
		{"another name", reflect.TypeFor[struct{ p *OrtSessionOptions }]()},
		{"not a pointer", reflect.TypeFor[struct{ o uintptr }]()},
		{"a pointer to something else", reflect.TypeFor[struct{ o *int }]()},
		{"not a struct", reflect.TypeFor[*OrtSessionOptions]()},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if err := checkSessionOptionsShape(tc.typ); err == nil || !strings.Contains(err.Error(), "epdevice.go") {
				t.Errorf("%s: err = %v, want a refusal that names epdevice.go", tc.typ, err)
			}
		})
	}
	// The pointer read is the one onnxruntime_go hands to ORT.
	if _, err := Init(""); err != nil {
		t.Fatal(err)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	p, err := sessionOptionsPtr(so)
	if err != nil || p == nil || p != unsafe.Pointer(reflect.ValueOf(so).Elem().Field(0).Pointer()) {
		t.Errorf("sessionOptionsPtr = %v, %v", p, err)
	}
	so.Destroy()
	if _, err := sessionOptionsPtr(so); err == nil {
		t.Error("destroyed session options: no error")
	}
}

func TestCheckAPIVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    string
		want string // "" for none
	}{
		{"1.29.0", ""}, {"1.22.0", ""}, {"1.27.1", ""},
		{"1.21.1", "older than 1.22"}, {"1.9.0", "older than 1.22"},
		{"2.0.0", "not one of 1.x"}, {"", "not one of 1.x"}, {"1.x", "not one of 1.x"},
	} {
		err := checkAPIVersion(tc.v)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("checkAPIVersion(%q) = %v, want %q", tc.v, err, tc.want)
		}
	}
}

// TestEPDevicesCPU: the environment lists the CPU provider's device, and
// SessionOptionsAppendExecutionProvider_V2 attaches it to a session that
// runs: the path of the CUDA plugin, minus the GPU.
func TestEPDevicesCPU(t *testing.T) {
	t.Parallel()
	if _, err := Init(""); err != nil {
		t.Fatal(err)
	}
	devs, err := EPDevices()
	if err != nil {
		t.Fatal(err)
	}
	var cpu bool
	for _, d := range devs {
		t.Logf("device: %s (EP vendor %s)", d, d.EPVendor)
		cpu = cpu || d.EP == "CPUExecutionProvider" && d.Type == "CPU"
	}
	if !cpu {
		t.Fatalf("GetEpDevices lists %v, want CPUExecutionProvider on CPU", devs)
	}

	so, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	d, err := appendEP(so, "CPUExecutionProvider")
	if err != nil || d.Type != "CPU" {
		t.Fatalf("appendEP CPU: %v, %v", d, err)
	}
	in, err := ort.NewTensor(ort.NewShape(1, 2), []float32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	sess, err := ort.NewAdvancedSessionWithONNXData(addModel(t), []string{"x", "b"}, []string{"y"}, []ort.Value{in, in}, []ort.Value{out}, so)
	if err != nil {
		t.Fatalf("a session with the V2-attached CPU provider: %v", err)
	}
	defer sess.Destroy()
	if err := sess.Run(); err != nil {
		t.Fatal(err)
	}
	if got := out.GetData(); got[0] != 2 || got[1] != 4 {
		t.Errorf("x+x = %v, want [2 4]", got)
	}

	// No CUDA provider registered (the CPU library has none): no device,
	// and the error lists what there is.
	so2, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so2.Destroy()
	_, err = appendEP(so2, CUDAEP)
	var nd *NoDeviceError
	if !errors.As(err, &nd) || !strings.Contains(err.Error(), "no CUDAExecutionProvider device") || !strings.Contains(err.Error(), "CPUExecutionProvider on CPU") {
		t.Errorf("appendEP CUDA: %v, want a *NoDeviceError listing the CPU device", err)
	}
}

// addModel is y = x + b over float32 tensors.
func addModel(t *testing.T) []byte {
	t.Helper()
	vi := func(name string) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT))}}}}
	}
	b, err := proto.Marshal(&onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String("epdevice_test"),
			Node:   []*onnxpb.NodeProto{{OpType: proto.String("Add"), Input: []string{"x", "b"}, Output: []string{"y"}}},
			Input:  []*onnxpb.ValueInfoProto{vi("x"), vi("b")},
			Output: []*onnxpb.ValueInfoProto{vi("y")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOrtepHeader compiles ortep.h beside the onnxruntime_c_api.h of the
// onnxruntime_go module in use and checks every index, type and constant
// against it: an onnxruntime_go upgrade that moved one fails here.
func TestOrtepHeader(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/yalue/onnxruntime_go: %v", err)
	}
	modDir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(modDir, "onnxruntime_c_api.h")); err != nil {
		t.Fatalf("the module's header: %v", err)
	}
	cc := "gcc"
	if b, err := exec.Command("go", "env", "CC").Output(); err == nil && strings.TrimSpace(string(b)) != "" {
		cc = strings.Fields(string(b))[0]
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	src.WriteString(`#include <stddef.h>
#include "onnxruntime_c_api.h"
#include "ortep.h"
_Static_assert(ORT_API_VERSION >= TL_ORT_API_VERSION, "the module's header predates the API version asked");
_Static_assert(offsetof(OrtApiBase, GetApi) == offsetof(tl_api_base, GetApi), "GetApi");
_Static_assert(offsetof(OrtApiBase, GetVersionString) == offsetof(tl_api_base, GetVersionString), "GetVersionString");
_Static_assert(ORT_LOGGING_LEVEL_FATAL == TL_LOGGING_LEVEL_FATAL, "fatal");
_Static_assert(OrtHardwareDeviceType_CPU == TL_HW_CPU && OrtHardwareDeviceType_GPU == TL_HW_GPU && OrtHardwareDeviceType_NPU == TL_HW_NPU, "device types");
_Static_assert(sizeof(OrtLoggingLevel) == sizeof(int) && sizeof(OrtHardwareDeviceType) == sizeof(int), "enums as int");
#define AT(NAME) _Static_assert(offsetof(OrtApi, NAME) == TL_IDX_##NAME * sizeof(void *), #NAME " index");
#define TYPED(NAME) AT(NAME) _Static_assert(__builtin_types_compatible_p(__typeof__(((OrtApi *)0)->NAME), tl_##NAME##_fn), #NAME " type");
`)
	// CreateEnv and HardwareDevice_Type take or give an enum, which
	// ortep.h passes as an int (checked above); the rest match exactly.
	for _, name := range []string{"CreateEnv", "HardwareDevice_Type"} {
		src.WriteString("AT(" + name + ")\n")
	}
	for _, name := range []string{"GetErrorMessage", "ReleaseEnv", "ReleaseStatus", "GetEpDevices",
		"SessionOptionsAppendExecutionProvider_V2", "HardwareDevice_VendorId", "HardwareDevice_Vendor",
		"HardwareDevice_DeviceId", "EpDevice_EpName", "EpDevice_EpVendor", "EpDevice_Device"} {
		src.WriteString("TYPED(" + name + ")\n")
	}
	dir := t.TempDir()
	c := filepath.Join(dir, "check.c")
	if err := os.WriteFile(c, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cc, "-std=gnu11", "-Wall", "-Werror", "-fsyntax-only", "-I", modDir, "-I", wd, c)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ortep.h disagrees with %s/onnxruntime_c_api.h: %v\n%s", modDir, err, out)
	}
}
