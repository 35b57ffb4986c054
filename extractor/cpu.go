package extractor

import "golang.org/x/sys/cpu"

// cpuFeatures lists the instruction sets that ONNX Runtime's CPU kernels
// choose between (MLAS dispatches on them): shards computed on machines
// that differ here may differ in their features' last bits.
func cpuFeatures() []string {
	var f []string
	for _, x := range []struct {
		name string
		has  bool
	}{
		{"sse4.1", cpu.X86.HasSSE41}, {"avx", cpu.X86.HasAVX}, {"avx2", cpu.X86.HasAVX2}, {"fma", cpu.X86.HasFMA},
		{"avx512f", cpu.X86.HasAVX512F}, {"avx512bw", cpu.X86.HasAVX512BW}, {"avx512vnni", cpu.X86.HasAVX512VNNI},
		{"avxvnni", cpu.X86.HasAVXVNNI}, {"amx", cpu.X86.HasAMXTile},
		{"asimd", cpu.ARM64.HasASIMD}, {"asimddp", cpu.ARM64.HasASIMDDP}, {"sve", cpu.ARM64.HasSVE}, {"i8mm", cpu.ARM64.HasI8MM},
	} {
		if x.has {
			f = append(f, x.name)
		}
	}
	return f
}
