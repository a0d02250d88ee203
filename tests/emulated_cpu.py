"""The CPU that tests and .ci/cpu_emulated.sh emulate to check the AVX2-only branch on any x86_64 machine."""

# qemu-user's Haswell: AVX2 and FMA, no AVX-512, no VNNI, no bf16 (ONNX Runtime picks its saturating u8 x s8 kernel
# there); the features qemu's TCG cannot emulate are turned off so that each process does not warn about them.
EMULATED_CPU = "Haswell,pcid=off,x2apic=off,tsc-deadline=off,hle=off,invpcid=off,rtm=off"
