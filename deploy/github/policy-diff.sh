#!/usr/bin/env bash
# What each changed policy alters, against the base branch's version of it, as
# Markdown: `archiver diff` of every policy changed between BASE and HEAD.
#
#   deploy/github/policy-diff.sh BASE [FOLDER]     (FOLDER defaults to policies)
#
# Writes to $GITHUB_STEP_SUMMARY when set (the job summary), else to stdout.
# Exits non-zero when a policy cannot be compared (it is invalid: `archiver
# validate` says why); a policy that changes decisions is not an error.
set -euo pipefail
base="${1:?usage: policy-diff.sh BASE [FOLDER]}"
folder="${2:-policies}"
# Appended to the job summary; otherwise plain stdout, never reopened (a caller's file
# opened anew by `>>/dev/stdout` would be written over from its start).
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  exec >>"$GITHUB_STEP_SUMMARY"
fi
status=0

{
  echo "## Policy changes against ${base:0:12}"
  echo
}
changed=$(git diff --name-only --diff-filter=AMR "$base" HEAD -- "$folder" \
  | grep -E '\.ya?ml$' | grep -vE '\.test\.ya?ml$' || true)
if [ -z "$changed" ]; then
  echo "No policy changed."
  exit 0
fi
for policy in $changed; do
  echo "### \`$policy\`"
  if ! git cat-file -e "$base:$policy" 2>/dev/null; then
    echo "A new policy: nothing to compare with."
    echo
    continue
  fi
  # The old version is read from stdin; relative paths in it resolve against the
  # current folder, so compare from the policy's own folder.
  dir=$(dirname "$policy")
  name=$(basename "$policy")
  echo '```'
  if ! git show "$base:$policy" | (cd "$dir" && archiver diff - "$name") 2>&1; then
    status=1
  fi
  echo '```'
  echo
done
exit "$status"
