#!/bin/sh
# Prints the number of words on standard input.
tr -s ' \n' '\n' | grep -c .
