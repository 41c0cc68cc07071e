#!/usr/bin/env bash
# launch/auto_resume.sh brings a killed run to completion from its checkpoints, and the result
# equals an uninterrupted run's model bit for bit.
# usage: auto_resume_check.sh KWM SOURCE_DIR
set -euo pipefail
kwm=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$src"
[ -f data/sunspots.csv ] || { echo "skip: data/sunspots.csv missing (launch/fetch_data.sh)"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
common=(train --config configs/quickstart.yaml --quiet --set train.checkpoint_every=20 --run-dir "$work/run")

"$kwm" "${common[@]}" > /dev/null 2>&1
mv "$work/run" "$work/straight"

# The first attempt kills itself (SIGKILL) once a checkpoint exists; later attempts run through.
cat > "$work/flaky.sh" <<SH
#!/usr/bin/env bash
if [ ! -f "$work/killed" ]; then
  "\$@" > /dev/null 2>&1 &
  pid=\$!
  until ls -d "$work/run/checkpoints/step-"[0-9]* 2>/dev/null | grep -qv '\.tmp$'; do sleep 0.01; done
  touch "$work/killed"
  kill -KILL \$pid; wait \$pid; exit \$?
fi
exec "\$@"
SH
chmod +x "$work/flaky.sh"
launch/auto_resume.sh --run-dir "$work/run" --delay 0 -- "$work/flaky.sh" "$kwm" "${common[@]}" \
  2> "$work/log" > /dev/null || fail "auto_resume.sh failed: $(cat "$work/log")"
grep -q "restarting from the newest checkpoint" "$work/log" || fail "no restart happened"
grep -q "completed after 1 restart" "$work/log" || fail "unexpected restart count: $(cat "$work/log")"
cmp "$work/straight/model.yaml" "$work/run/model.yaml" || fail "resumed model differs"
echo "auto-resume check passed"
