#!/bin/sh
# Starts the API, waits until it says it is ready, then runs the smoke test.
python3 server.py &
echo "waiting for server.ready"
until [ -f server.ready ]; do sleep 0.5; done
python3 smoke.py
