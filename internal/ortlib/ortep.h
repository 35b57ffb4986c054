// The few entries of ONNX Runtime's C API (onnxruntime_c_api.h, Copyright
// (c) Microsoft Corporation, MIT License) that attaching a plugin execution
// provider takes, which onnxruntime_go v1.27 does not wrap. Not the whole
// 475 KB header: OrtApi is a table of function pointers that ONNX Runtime
// only ever appends to, so an entry is its index in the table and its C
// type. TestOrtepHeader compiles this file beside the header that the
// onnxruntime_go module ships and fails on any index or type that differs.

#ifndef TLEARN_ORTEP_H
#define TLEARN_ORTEP_H

#include <stddef.h>
#include <stdint.h>

// The API version asked of OrtGetApiBase: 22 (ONNX Runtime 1.22) is the
// first with GetEpDevices and SessionOptionsAppendExecutionProvider_V2.
#define TL_ORT_API_VERSION 22

typedef struct OrtStatus OrtStatus;
typedef struct OrtEnv OrtEnv;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtEpDevice OrtEpDevice;
typedef struct OrtHardwareDevice OrtHardwareDevice;

// OrtApiBase: what OrtGetApiBase returns.
typedef struct {
	const void *(*GetApi)(uint32_t version);
	const char *(*GetVersionString)(void);
} tl_api_base;

// ORT_LOGGING_LEVEL_FATAL of the enum OrtLoggingLevel, and the values of
// the enum OrtHardwareDeviceType; both enums are passed as an int.
#define TL_LOGGING_LEVEL_FATAL 4
#define TL_HW_CPU 0
#define TL_HW_GPU 1
#define TL_HW_NPU 2

typedef const char *(*tl_GetErrorMessage_fn)(const OrtStatus *status);
typedef OrtStatus *(*tl_CreateEnv_fn)(int log_severity_level, const char *logid, OrtEnv **out);
typedef void (*tl_ReleaseEnv_fn)(OrtEnv *env);
typedef void (*tl_ReleaseStatus_fn)(OrtStatus *status);
typedef OrtStatus *(*tl_GetEpDevices_fn)(const OrtEnv *env, const OrtEpDevice *const **ep_devices,
                                         size_t *num_ep_devices);
typedef OrtStatus *(*tl_SessionOptionsAppendExecutionProvider_V2_fn)(
    OrtSessionOptions *session_options, OrtEnv *env, const OrtEpDevice *const *ep_devices,
    size_t num_ep_devices, const char *const *ep_option_keys, const char *const *ep_option_vals,
    size_t num_ep_options);
typedef int (*tl_HardwareDevice_Type_fn)(const OrtHardwareDevice *device);
typedef uint32_t (*tl_HardwareDevice_VendorId_fn)(const OrtHardwareDevice *device);
typedef const char *(*tl_HardwareDevice_Vendor_fn)(const OrtHardwareDevice *device);
typedef uint32_t (*tl_HardwareDevice_DeviceId_fn)(const OrtHardwareDevice *device);
typedef const char *(*tl_EpDevice_EpName_fn)(const OrtEpDevice *ep_device);
typedef const char *(*tl_EpDevice_EpVendor_fn)(const OrtEpDevice *ep_device);
typedef const OrtHardwareDevice *(*tl_EpDevice_Device_fn)(const OrtEpDevice *ep_device);

// Each entry's index in OrtApi.
enum {
	TL_IDX_GetErrorMessage = 2,
	TL_IDX_CreateEnv = 3,
	TL_IDX_ReleaseEnv = 92,
	TL_IDX_ReleaseStatus = 93,
	TL_IDX_GetEpDevices = 303,
	TL_IDX_SessionOptionsAppendExecutionProvider_V2 = 304,
	TL_IDX_HardwareDevice_Type = 307,
	TL_IDX_HardwareDevice_VendorId = 308,
	TL_IDX_HardwareDevice_Vendor = 309,
	TL_IDX_HardwareDevice_DeviceId = 310,
	TL_IDX_EpDevice_EpName = 312,
	TL_IDX_EpDevice_EpVendor = 313,
	TL_IDX_EpDevice_Device = 316,
};

// TL_FN is the entry NAME of the OrtApi table api, as its C type.
#define TL_FN(api, NAME) ((tl_##NAME##_fn)(((void *const *)(api))[TL_IDX_##NAME]))

#endif
