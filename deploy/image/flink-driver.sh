#!/bin/bash
# The Beam driver program on the Flink JobManager.
#
# Beam's FlinkPortableClientEntryPoint (the FlinkDeployment's entry class) starts a job service
# inside the JobManager and runs `bash -c "<driver-cmd> --job_endpoint=localhost:<port>"`.
# This script turns that trailing Beam option into `--beam-option job_endpoint=…`, which
# `auditveil run` passes through to Beam, and runs the pipeline with everything else given.
#
# Usage: flink-driver.sh <auditveil run options…> --job_endpoint=HOST:PORT
set -euo pipefail
args=()
for a in "$@"; do
    case "$a" in
        --job_endpoint=*) args+=(--beam-option "job_endpoint=${a#--job_endpoint=}") ;;
        *) args+=("$a") ;;
    esac
done
exec auditveil run "${args[@]}"
