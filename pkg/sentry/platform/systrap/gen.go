package systrap

// The stub is written in GNU assembler (stub_amd64.gas) and its raw bytes
// are committed as stub_amd64.bin, so building needs no assembler; only
// changing the stub does (binutils: as, objcopy).
//go:generate sh -c "as --64 -o stub_amd64.o stub_amd64.gas && objcopy -O binary -j .text stub_amd64.o stub_amd64.bin && rm -f stub_amd64.o"
