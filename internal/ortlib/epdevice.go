package ortlib

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "ortep.h"

// tl_open returns the OrtApiBase of the library at path, which must be
// loaded already: RTLD_NOLOAD never maps a second copy. *handle holds a
// reference to dlclose; *err, on failure, is a malloc'd message.
static const tl_api_base *tl_open(const char *path, void **handle, char **err) {
	*handle = NULL;
	*err = NULL;
	void *h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
	if (h == NULL) {
		const char *e = dlerror();
		*err = strdup(e ? e : "not loaded");
		return NULL;
	}
	dlerror();
	void *sym = dlsym(h, "OrtGetApiBase");
	if (sym == NULL) {
		const char *e = dlerror();
		*err = strdup(e ? e : "no OrtGetApiBase");
		dlclose(h);
		return NULL;
	}
	*handle = h;
	return ((const tl_api_base *(*)(void))sym)();
}

static const char *tl_version(const tl_api_base *base) { return base->GetVersionString(); }
static const void *tl_get_api(const tl_api_base *base) { return base->GetApi(TL_ORT_API_VERSION); }

static const char *tl_status_message(const void *api, OrtStatus *st) { return TL_FN(api, GetErrorMessage)(st); }
static void tl_release_status(const void *api, OrtStatus *st) { TL_FN(api, ReleaseStatus)(st); }

// ONNX Runtime's environment is a ref-counted singleton: with one in the
// process, CreateEnv returns it (its logging arguments unused) and takes
// a reference, which ReleaseEnv gives back.
static OrtStatus *tl_create_env(const void *api, OrtEnv **env) {
	return TL_FN(api, CreateEnv)(TL_LOGGING_LEVEL_FATAL, "tlearn", env);
}
static void tl_release_env(const void *api, OrtEnv *env) { TL_FN(api, ReleaseEnv)(env); }

static OrtStatus *tl_ep_devices(const void *api, OrtEnv *env, const OrtEpDevice *const **devs, size_t *n) {
	return TL_FN(api, GetEpDevices)(env, devs, n);
}
static const OrtEpDevice *tl_ep_device_at(const OrtEpDevice *const *devs, size_t i) { return devs[i]; }
static const char *tl_ep_name(const void *api, const OrtEpDevice *d) { return TL_FN(api, EpDevice_EpName)(d); }
static const char *tl_ep_vendor(const void *api, const OrtEpDevice *d) { return TL_FN(api, EpDevice_EpVendor)(d); }
static const OrtHardwareDevice *tl_hw(const void *api, const OrtEpDevice *d) { return TL_FN(api, EpDevice_Device)(d); }
static int tl_hw_type(const void *api, const OrtHardwareDevice *h) { return TL_FN(api, HardwareDevice_Type)(h); }
static const char *tl_hw_vendor(const void *api, const OrtHardwareDevice *h) { return TL_FN(api, HardwareDevice_Vendor)(h); }
static uint32_t tl_hw_vendor_id(const void *api, const OrtHardwareDevice *h) { return TL_FN(api, HardwareDevice_VendorId)(h); }
static uint32_t tl_hw_device_id(const void *api, const OrtHardwareDevice *h) { return TL_FN(api, HardwareDevice_DeviceId)(h); }

// tl_append_v2 attaches the execution provider of devs[i] (one device) to
// the session options, with the options that the provider put in the
// device (the CUDA provider's device_id).
static OrtStatus *tl_append_v2(const void *api, void *so, OrtEnv *env, const OrtEpDevice *const *devs, size_t i) {
	return TL_FN(api, SessionOptionsAppendExecutionProvider_V2)((OrtSessionOptions *)so, env, devs + i, 1, NULL, NULL, 0);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// minAPIMinor is the ONNX Runtime 1.x whose C API first has GetEpDevices
// and SessionOptionsAppendExecutionProvider_V2 (TL_ORT_API_VERSION).
const minAPIMinor = C.TL_ORT_API_VERSION

// CUDAEP is the CUDA execution provider's name, as its OrtEpDevices carry it.
const CUDAEP = "CUDAExecutionProvider"

// EPDevice is one OrtEpDevice of the environment: an execution provider
// and a device it can run on.
type EPDevice struct {
	EP       string // the execution provider, e.g. CPUExecutionProvider
	EPVendor string
	Type     string // the hardware device's type: CPU, GPU or NPU
	Vendor   string // the hardware vendor's name, as ONNX Runtime found it
	VendorID uint32 // its PCI vendor id (NVIDIA is 0x10de)
	DeviceID uint32
}

func (d EPDevice) String() string {
	return fmt.Sprintf("%s on %s (%s, %#04x:%#04x)", d.EP, d.Type, d.Vendor, d.VendorID, d.DeviceID)
}

// NoDeviceError is an attach that found no device of the execution
// provider among the environment's: the provider is registered but sees
// no hardware it can run on (the CUDA provider without an NVIDIA GPU).
type NoDeviceError struct {
	EP      string
	Devices []EPDevice // what ONNX Runtime does list
}

func (e *NoDeviceError) Error() string {
	return fmt.Sprintf("ortlib: ONNX Runtime has no %s device (its devices: %s)", e.EP, e.listing())
}

func (e *NoDeviceError) listing() string {
	if len(e.Devices) == 0 {
		return "none"
	}
	list := make([]string, len(e.Devices))
	for i, d := range e.Devices {
		list[i] = d.String()
	}
	return strings.Join(list, "; ")
}

// ortAPI is the C API table of the loaded library, which it holds open
// (one dlopen reference) until close.
type ortAPI struct {
	handle unsafe.Pointer
	api    unsafe.Pointer
}

// openAPI finds the C API of the library at path, which Init loaded. It
// fails, saying so, on a library older than 1.22.
func openAPI(path string) (*ortAPI, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var handle unsafe.Pointer
	var cerr *C.char
	base := C.tl_open(cpath, &handle, &cerr)
	if base == nil {
		msg := C.GoString(cerr)
		C.free(unsafe.Pointer(cerr))
		return nil, fmt.Errorf("ortlib: the loaded ONNX Runtime %s: %s", path, msg)
	}
	a := &ortAPI{handle: handle}
	if err := checkAPIVersion(C.GoString(C.tl_version(base))); err != nil {
		a.close()
		return nil, fmt.Errorf("ortlib: %s: %w", path, err)
	}
	// checkAPIVersion has made sure that GetApi knows this version: a
	// version it does not know prints a line on stderr and gives NULL.
	if a.api = unsafe.Pointer(C.tl_get_api(base)); a.api == nil {
		a.close()
		return nil, fmt.Errorf("ortlib: %s refused C API version %d", path, minAPIMinor)
	}
	return a, nil
}

// checkAPIVersion accepts an ONNX Runtime version string of 1.22 or later.
func checkAPIVersion(v string) error {
	major, rest, _ := strings.Cut(v, ".")
	minorStr, _, _ := strings.Cut(rest, ".")
	minor, err := strconv.Atoi(minorStr)
	if major != "1" || err != nil {
		return fmt.Errorf("ONNX Runtime version %q is not one of 1.x", v)
	}
	if minor < minAPIMinor {
		return fmt.Errorf("ONNX Runtime %s is older than 1.%d, the first whose C API attaches a plugin execution provider (GetEpDevices, SessionOptionsAppendExecutionProvider_V2)", v, minAPIMinor)
	}
	return nil
}

func (a *ortAPI) close() {
	if a.handle != nil {
		C.dlclose(a.handle)
		a.handle = nil
	}
}

// status turns an OrtStatus into an error with ONNX Runtime's message and
// releases it; nil is success.
func (a *ortAPI) status(st *C.OrtStatus) error {
	if st == nil {
		return nil
	}
	msg := C.GoString(C.tl_status_message(a.api, st))
	C.tl_release_status(a.api, st)
	return errors.New(msg)
}

// withEnv runs fn with the C API and a reference to the process's ORT
// environment, under mu so that Close cannot unload the library meanwhile.
func withEnv(fn func(a *ortAPI, env *C.OrtEnv) error) error {
	mu.Lock()
	defer mu.Unlock()
	// Without an environment CreateEnv would make a new one, not take the
	// process's.
	if !done || initErr != nil || !ort.IsInitialized() {
		return ErrNoORT
	}
	a, err := openAPI(loaded.Path)
	if err != nil {
		return err
	}
	defer a.close()
	var env *C.OrtEnv
	if err := a.status(C.tl_create_env(a.api, &env)); err != nil {
		return fmt.Errorf("ortlib: the ONNX Runtime environment: %w", err)
	}
	defer C.tl_release_env(a.api, env)
	return fn(a, env)
}

// epDevices lists the environment's OrtEpDevices; the array stays ONNX
// Runtime's.
func (a *ortAPI) epDevices(env *C.OrtEnv) (**C.OrtEpDevice, []EPDevice, error) {
	var arr **C.OrtEpDevice
	var n C.size_t
	if err := a.status(C.tl_ep_devices(a.api, env, &arr, &n)); err != nil {
		return nil, nil, fmt.Errorf("ortlib: GetEpDevices: %w", err)
	}
	devs := make([]EPDevice, n)
	for i := range devs {
		d := C.tl_ep_device_at(arr, C.size_t(i))
		hw := C.tl_hw(a.api, d)
		devs[i] = EPDevice{
			EP:       C.GoString(C.tl_ep_name(a.api, d)),
			EPVendor: C.GoString(C.tl_ep_vendor(a.api, d)),
			Type:     hwType(C.tl_hw_type(a.api, hw)),
			Vendor:   C.GoString(C.tl_hw_vendor(a.api, hw)),
			VendorID: uint32(C.tl_hw_vendor_id(a.api, hw)),
			DeviceID: uint32(C.tl_hw_device_id(a.api, hw)),
		}
	}
	return arr, devs, nil
}

func hwType(t C.int) string {
	switch t {
	case C.TL_HW_CPU:
		return "CPU"
	case C.TL_HW_GPU:
		return "GPU"
	case C.TL_HW_NPU:
		return "NPU"
	}
	return fmt.Sprintf("type %d", int(t))
}

// EPDevices lists the devices of the execution providers of the process's
// ONNX Runtime environment: the CPU provider's always, a plugin
// provider's once it is registered and finds its hardware. It needs Init
// and a library of 1.22 or later.
func EPDevices() ([]EPDevice, error) {
	var devs []EPDevice
	err := withEnv(func(a *ortAPI, env *C.OrtEnv) (err error) {
		_, devs, err = a.epDevices(env)
		return err
	})
	return devs, err
}

// appendEP attaches execution provider ep to so on the first of its
// devices in the environment (SessionOptionsAppendExecutionProvider_V2),
// and returns that device. A provider with no device gives a
// *NoDeviceError.
func appendEP(so *ort.SessionOptions, ep string) (EPDevice, error) {
	cso, err := sessionOptionsPtr(so)
	if err != nil {
		return EPDevice{}, err
	}
	var used EPDevice
	err = withEnv(func(a *ortAPI, env *C.OrtEnv) error {
		arr, devs, err := a.epDevices(env)
		if err != nil {
			return err
		}
		for i, d := range devs {
			if d.EP != ep {
				continue
			}
			// One device: a CUDA session runs on one GPU, device_id
			// 0 being the provider's first.
			if err := a.status(C.tl_append_v2(a.api, cso, env, arr, C.size_t(i))); err != nil {
				return fmt.Errorf("ortlib: attach %s on %s: %w", ep, d, err)
			}
			used = d
			return nil
		}
		return &NoDeviceError{EP: ep, Devices: devs}
	})
	return used, err
}

// sessionOptionsPtr is the C OrtSessionOptions of so: onnxruntime_go keeps
// it in the unexported field o, which only reflect and unsafe reach. The
// shape is checked first, so that an onnxruntime_go that changes it fails
// here (and in TestSessionOptionsShape) instead of passing C a wrong
// pointer.
func sessionOptionsPtr(so *ort.SessionOptions) (unsafe.Pointer, error) {
	if err := checkSessionOptionsShape(reflect.TypeFor[ort.SessionOptions]()); err != nil {
		return nil, err
	}
	if so == nil {
		return nil, errors.New("ortlib: nil session options")
	}
	p := *(*unsafe.Pointer)(unsafe.Pointer(so))
	if p == nil {
		return nil, errors.New("ortlib: session options already destroyed")
	}
	return p, nil
}

// checkSessionOptionsShape accepts the struct onnxruntime_go v1.27 has:
// one field, o, a pointer to the C OrtSessionOptions, at offset 0.
func checkSessionOptionsShape(t reflect.Type) error {
	bad := func(why string) error {
		return fmt.Errorf("ortlib: %s is not the struct this build of tlearn reaches into (%s); the onnxruntime_go upgrade needs epdevice.go updated", t, why)
	}
	if t.Kind() != reflect.Struct || t.NumField() != 1 {
		return bad("want a struct of one field")
	}
	f := t.Field(0)
	switch {
	case f.Name != "o" || f.Offset != 0:
		return bad("want its field o at offset 0")
	case f.Type.Kind() != reflect.Pointer || !strings.HasSuffix(f.Type.Elem().Name(), "OrtSessionOptions"):
		return bad("want o to be a *C.OrtSessionOptions, have " + f.Type.String())
	}
	return nil
}
