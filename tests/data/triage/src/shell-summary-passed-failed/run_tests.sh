#!/bin/sh
# Runs each case in cases/: the program's output must equal the .out file.
pass=0
fail=0
for input in cases/*.in; do
    expected="${input%.in}.out"
    if sh ./wc.sh < "$input" | cmp -s - "$expected"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
