# Debuggers inside: strace -f of a known program (its writes and ends,
# pids removed) and gdb stopping at a breakpoint and printing a variable.
for tool in strace gdb gcc; do
    command -v $tool >/dev/null || { echo "$tool not installed"; exit 1; }
done
cd "$(mktemp -d)"
printf '#include <stdio.h>\nint g = 41;\nint main(void) { g++; printf("g is %%d\\n", g); return 0; }\n' > p.c
gcc -g -O0 -o p p.c
strace -f -qq -o trace -e trace=write,exit_group -e signal=none sh -c './p; (echo sub); exit 3'
echo "strace status $?"
sed 's/^[0-9]* *//' trace
# Address-space randomization stays on (the instance refuses to turn it off).
gdb -batch -ex 'set disable-randomization off' -ex 'break main' -ex run -ex 'print g' -ex next -ex 'print g' -ex continue ./p 2>/dev/null \
    | grep -E '^\$|^g is|exited' | sed 's/process [0-9]*/process N/'
echo "status $?"
