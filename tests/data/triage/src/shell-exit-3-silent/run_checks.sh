#!/bin/sh
# Acceptance: the build must have produced the site.
[ -d public ] || exit 3
[ -f public/index.html ] || exit 4
