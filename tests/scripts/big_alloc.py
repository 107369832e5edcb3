"""One allocation far larger than the address space the shell's `ulimit -v` leaves."""

print("step 1/3 loss=0.5", flush=True)
batch = bytearray(8 * 2**30)
