#!/usr/bin/env bash
# Regenerates the failure-triage corpus: cases/<case>.log and labels.tsv beside this script.
#
# Each case is a tiny project in src/<case>/ (broken code and its tests) with a src/<case>/case.conf
# that says how to run it and how a careful engineer would route the failure (issue 6, "Accuracy"):
#
#   expected=implementation_bug          # missing_dependency, spec_mismatch, implementation_bug, timeout,
#                                        # flaky_test, test_failure or unknown
#   timeout=30                           # seconds given to the sandbox (--timeout)
#   env=pytest                           # copied in beside the snippet: pytest, mypy or flake8 (a venv at
#                                        # .venv), jest (node_modules), or none
#   cmd=(.venv/bin/python -m pytest -q)  # the command, run in the workspace
#   prepare=(cargo test --offline --no-run)  # optional: run first in the sandbox, not recorded (a build)
#   align=(0.70 0.05)                    # optional, flaky cases: the fraction of a second at which the
#                                        # failing run and the re-run start (for clock-dependent tests)
#   note="..."                           # why that label
#   batch=seed-table                     # optional: the batch the case was added in (see below)
#
# For each case the snippet (less case.conf) is copied into a scratch folder and the command is run with
# `plancd sandbox run --backend process --workspace DIR --timeout S` (bubblewrap, no network). The log is
# what the command printed, stdout then stderr, without the one line `plancd sandbox run` itself adds at
# the end of stderr ("sandbox (process): exit N in Xs ..." or "timed out after Xs"); the exit code and
# the duration in labels.tsv are read from that line (exit code empty when killed at the deadline). Logs
# are cut at 64 KiB. Then the same command is re-run at once in the same workspace (timeouts excepted):
# a flaky_test case must pass then (rerun_passed=true; up to 15 tries from a fresh copy), any other case
# must fail again, and every case must fail the first time; otherwise the script stops with an error,
# since the label would be wrong.
#
# Batches: cases with `batch=seed-table` were written and labelled by the seed's failure_patterns
# table (../shared/seed: missing_dependency, spec_mismatch, implementation_bug, timeout, flaky) before
# triage.rs was changed to hold that table on real output (issue 12); the accuracy test reports them
# apart, so that the figure on cases the rules were not fitted to stays visible. labels.tsv carries
# the batch as its last column (empty for the cases before).
#
# Usage: bash tests/data/triage/generate.sh [CASE...]
#   no CASE: every case; labels.tsv is rewritten and logs of cases no longer in src/ are removed.
#   CASE...: only those; their lines in labels.tsv are replaced.
# Needs: plancd (target/debug/plancd, built when missing, or $PLANCD); /usr/bin/python3 3.11 with pip;
# node 20 and npm; Debian's rustc, cargo and golang-go in /usr/bin, since the sandbox sees the host's
# /usr but not ~/.cargo (installed with apt-get when missing, as root). pytest, pytest-timeout, mypy,
# flake8 (PyPI) and jest (npm) are installed, pinned, into .tools/ (git-ignored) on first use; the case
# workspaces get a copy, since the sandbox has no network. Takes about 20 minutes.
# The logs show those versions (Debian 12: Python 3.11.2, rustc 1.63, go 1.19; node 20; pytest 9.2,
# mypy 2.4, flake8 7.5, jest 30.5); durations, and the clock values in the flaky logs, change per run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
tools="$here/.tools"
plancd="${PLANCD:-$repo/target/debug/plancd}"
max_log=65536

die() { echo "generate.sh: $*" >&2; exit 1; }

ensure_system_tools() {
    local missing=()
    [[ -x /usr/bin/rustc && -x /usr/bin/cargo ]] || missing+=(rustc cargo)
    [[ -x /usr/bin/go ]] || missing+=(golang-go)
    if ((${#missing[@]})); then
        [[ $(id -u) == 0 ]] || die "install Debian's ${missing[*]} (the sandbox cannot see ~/.cargo)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed"
    [[ -x /usr/bin/python3 ]] || die "/usr/bin/python3 is needed"
    if [[ ! -x $plancd ]]; then
        (cd "$repo" && cargo build --quiet --bin plancd) || die "cannot build plancd"
    fi
}

# A venv of the host's /usr/bin/python3 that still works when copied into /workspace/.venv: its
# python is a copy, not a symlink (the sandbox copies regular files only).
ensure_venv() {
    local name=$1 dir="$tools/venv-$1"
    shift
    [[ -f $dir/.complete ]] && return
    rm -rf "$dir"
    /usr/bin/python3 -m venv --copies --without-pip "$dir"
    /usr/bin/python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
        --target "$dir/lib/python3.11/site-packages" "$@" 2> >(grep -v "as the 'root' user" >&2)
    rm -rf "$dir"/bin/python3* "$dir"/bin/[Aa]ctivate* "$dir/lib64" "$dir/lib/python3.11/site-packages/bin"
    touch "$dir/.complete"
}

ensure_jest() {
    local dir="$tools/jest"
    [[ -f $dir/.complete ]] && return
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '{"name": "triage-jest", "private": true, "dependencies": {"jest": "30.5.2"}}\n' >"$dir/package.json"
    (cd "$dir" && npm install --silent --no-audit --no-fund >/dev/null)
    touch "$dir/.complete"
}

ensure_env() {
    case $1 in
        none) ;;
        pytest) ensure_venv pytest pytest==9.2.0 pytest-timeout==2.4.0 ;;
        mypy) ensure_venv mypy mypy==2.4.1 ;;
        flake8) ensure_venv flake8 flake8==7.5.0 ;;
        jest) ensure_jest ;;
        *) die "unknown env '$1'" ;;
    esac
}

# A fresh workspace for a case: the snippet, less case.conf, and the env it asks for.
make_workspace() {
    local case=$1 env=$2 ws
    ws="$(mktemp -d "${TMPDIR:-/tmp}/triage-$case.XXXXXX")"
    cp -a "$here/src/$case/." "$ws/"
    rm -f "$ws/case.conf"
    case $env in
        pytest | mypy | flake8) cp -a "$tools/venv-$env" "$ws/.venv" ;;
        jest) cp -a "$tools/jest/node_modules" "$ws/node_modules" ;;
    esac
    echo "$ws"
}

# Sleeps until the clock's fraction of a second is $1.
wait_fraction() {
    /usr/bin/python3 -c 'import sys, time; time.sleep((float(sys.argv[1]) - time.time() % 1) % 1)' "$1"
}

# Runs the case's command in the sandbox; sets run_out, run_err (files), run_exit, run_secs.
# run_exit is empty when the command was killed at its deadline.
sandbox_run() {
    local ws=$1 timeout=$2 tmp=$3
    shift 3
    run_out="$tmp/out" run_err="$tmp/err"
    "$plancd" sandbox run --backend process --workspace "$ws" --timeout "$timeout" -- "$@" \
        >"$run_out" 2>"$tmp/err.all" </dev/null || true
    local summary
    summary="$(tail -n 1 "$tmp/err.all")"
    head -n -1 "$tmp/err.all" >"$run_err"
    # The summary line is printed after a newline of its own, so a stderr without a final newline
    # leaves the summary at the end of the command's last line.
    if [[ $summary != sandbox\ \(process\):* ]]; then
        local body="${summary%sandbox (process): *}"
        [[ $body != "$summary" ]] || die "no sandbox summary line in: $summary"
        printf '%s' "$body" >>"$run_err"
        summary="${summary:${#body}}"
    fi
    if [[ $summary =~ ^sandbox\ \(process\):\ exit\ ([0-9]+)\ in\ ([0-9.]+)s ]]; then
        run_exit=${BASH_REMATCH[1]} run_secs=${BASH_REMATCH[2]}
    elif [[ $summary =~ ^sandbox\ \(process\):\ timed\ out\ after\ ([0-9.]+)s ]]; then
        run_exit="" run_secs=${BASH_REMATCH[1]}
    else
        die "unexpected sandbox summary: $summary"
    fi
}

# Generates one case; appends its labels line to $2.
generate_case() {
    local case=$1 labels=$2
    local expected="" timeout="" env="" note="" batch="" cmd=() prepare=() align=()
    # shellcheck source=/dev/null
    source "$here/src/$case/case.conf"
    [[ -n $expected && -n $timeout && -n $env && -n $note && ${#cmd[@]} -gt 0 ]] || die "$case: case.conf lacks a field"
    ensure_env "$env"
    local tmp tries=0 ws exit secs rerun
    tmp="$(mktemp -d)"
    while :; do
        tries=$((tries + 1))
        ws="$(make_workspace "$case" "$env")"
        if ((${#prepare[@]})); then
            sandbox_run "$ws" 300 "$tmp" "${prepare[@]}"
            [[ $run_exit == 0 ]] || die "$case: prepare failed: $(cat "$run_out" "$run_err")"
        fi
        ((${#align[@]})) && wait_fraction "${align[0]}"
        sandbox_run "$ws" "$timeout" "$tmp" "${cmd[@]}"
        exit=$run_exit secs=$run_secs
        cat "$run_out" "$run_err" | head -c "$max_log" >"$tmp/log"
        rerun=false
        if [[ $expected != timeout ]]; then
            ((${#align[@]})) && wait_fraction "${align[1]}"
            sandbox_run "$ws" "$timeout" "$tmp" "${cmd[@]}"
            [[ $run_exit == 0 ]] && rerun=true
        fi
        rm -rf "$ws"
        local problem=""
        if [[ $exit == 0 ]]; then
            problem="the first run passed"
        elif [[ -z $exit && $expected != timeout ]]; then
            problem="killed at the deadline but labelled $expected"
        elif [[ $expected == flaky_test && $rerun != true ]]; then
            problem="the re-run failed too"
        elif [[ $expected != flaky_test && $rerun == true ]]; then
            problem="the re-run passed: flaky, not $expected"
        fi
        [[ -z $problem ]] && break
        [[ $expected == flaky_test && $tries -lt 15 ]] || die "$case: $problem"
    done
    mv "$tmp/log" "$here/cases/$case.log"
    rm -rf "$tmp"
    note="${note//$'\t'/ }"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$expected" "$exit" "$secs" "$timeout" "$rerun" "$note" "$batch" >>"$labels"
    printf '%-48s %-20s exit=%-4s %6ss%s\n' "$case" "$expected" "${exit:-kill}" "$secs" \
        "$( ((tries > 1)) && echo " ($tries tries)")"
}

main() {
    ensure_system_tools
    mkdir -p "$here/cases" "$tools"
    local cases=() all=false
    if (($#)); then
        cases=("$@")
    else
        all=true
        for d in "$here"/src/*/; do cases+=("$(basename "$d")"); done
    fi
    for c in "${cases[@]}"; do [[ -f $here/src/$c/case.conf ]] || die "no case '$c' (src/$c/case.conf)"; done

    local header new
    header=$'case\texpected\texit_code\tduration_seconds\ttimeout_seconds\trerun_passed\tnote\tbatch'
    new="$(mktemp)"
    for c in "${cases[@]}"; do generate_case "$c" "$new"; done

    local merged line name
    merged="$(mktemp)"
    if ! $all && [[ -f $here/labels.tsv ]]; then
        # Keep the lines of the cases not regenerated that are still in src/.
        while IFS= read -r line; do
            name="${line%%$'\t'*}"
            if [[ -f $here/src/$name/case.conf ]] && ! grep -q "^$name"$'\t' "$new"; then
                printf '%s\n' "$line"
            fi
        done < <(tail -n +2 "$here/labels.tsv") >"$merged"
    else
        local log
        for log in "$here"/cases/*.log; do
            name="$(basename "$log" .log)"
            if [[ -e $log && ! -d $here/src/$name ]]; then rm -f "$log"; fi
        done
    fi
    { echo "$header"; LC_ALL=C sort -t $'\t' -k1,1 "$merged" "$new"; } >"$here/labels.tsv"
    rm -f "$new" "$merged"
    echo "$(($(wc -l <"$here/labels.tsv") - 1)) cases in labels.tsv"
}

main "$@"
