package vdso

// The vDSO is written in C (src/: vdso.c, the linker script vdso.lds, the
// version script vdso.ver and the compiler flags vdso.flags) and its built
// image is committed as vdso.so, so building the Sentry needs no C
// compiler; only changing the vDSO does (gcc, binutils).
// TestImageUpToDate checks that vdso.so is what the sources build to.
//go:generate sh -c "cd src && gcc $(cat vdso.flags) -o ../vdso.so vdso.c && chmod 644 ../vdso.so"
