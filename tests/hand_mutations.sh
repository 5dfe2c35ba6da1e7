#!/usr/bin/env bash
# The three slips of issue 13, each applied by hand to a fresh clone of HEAD: every one
# must make a non-slow test fail, with the shared data absent and present.
#
#   bash tests/hand_mutations.sh            # both settings
#   SETTINGS=absent bash tests/hand_mutations.sh
#
# "absent": the clone has no ../shared and SGDTEMP_DATA names a missing folder;
# "present": ../shared beside the clone is the real shared folder (a symlink).
# Exit status 0 only if every mutant is caught (and the unmutated clone passes).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
[ -x "$PY" ] || PY=python3
SHARED=${SHARED:-$(cd "$REPO/.." && pwd)/shared}
SETTINGS=${SETTINGS:-absent present}
# The store, engine, data-format and power-law tests (patterns: files that exist are run).
TESTS="tests/test_store.py tests/test_store_keys.py tests/test_train.py tests/test_train_steps.py
       tests/test_data_formats.py tests/test_power_law.py tests/test_monitor_step.py
       tests/test_schedules*.py tests/test_multirun.py"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
status=0

# name | file | sed expression (each must change the file)
MUTANTS=(
  "store key ignores device|src/sgdtemp/store.py|s/LOCATION_KEYS = frozenset({\"data_dir\"})/LOCATION_KEYS = frozenset({\"data_dir\", \"device\"})/"
  "store key ignores weight_decay|src/sgdtemp/store.py|s/LOCATION_KEYS = frozenset({\"data_dir\"})/LOCATION_KEYS = frozenset({\"data_dir\", \"weight_decay\"})/"
  "learning rate applied as lr/B|src/sgdtemp/train.py|s/lr=cfg\[\"lr\"\], momentum=/lr=cfg[\"lr\"] \/ cfg[\"batch_size\"], momentum=/"
  "lr/B in a scheduled run|src/sgdtemp/train.py|s/group\[\"lr\"\] = cfg\[\"lr\"\] \* c_t/group[\"lr\"] = cfg[\"lr\"] \/ cfg[\"batch_size\"] * c_t/"
  "lr/B in vectorized groups (run_trainings)|src/sgdtemp/train.py|s/lr = torch.tensor(\[c\[\"lr\"\] for c in cfgs\]/lr = torch.tensor([c[\"lr\"] \/ c[\"batch_size\"] for c in cfgs]/"
  "monitoring correction sign flipped|src/sgdtemp/power_law.py|s/rho_c = rho_c + MONITORING_BETA/rho_c = rho_c - MONITORING_BETA/"
)

run_tests() {  # $1 clone, $2 setting; prints pytest's summary line, returns pytest's status
  local clone=$1 data files
  files=$(cd "$clone" && ls -d $TESTS 2>/dev/null)
  if [ "$2" = present ]; then data=$SHARED/data; else data=$WORK/no-such-data; fi
  (cd "$clone" && env -u PYTHONPATH PYTHONPATH="$clone/src" SGDTEMP_DATA="$data" \
     SGDTEMP_CACHE="$WORK/cache-$2" SGDTEMP_RESULTS="$WORK/results-$2" OMP_WAIT_POLICY=PASSIVE \
     nice -n 10 "$PY" -m pytest -m "not slow" -q -p no:randomly $files >"$WORK/log" 2>&1)
  local rc=$?
  tail -n 1 "$WORK/log"
  grep -E "^FAILED" "$WORK/log" | head -n 3 | sed 's/^/      /'
  return $rc
}

for setting in $SETTINGS; do
  base=$WORK/$setting
  mkdir -p "$base"
  git clone -q "$REPO" "$base/sgdtemp"
  if [ "$setting" = present ]; then ln -s "$SHARED" "$base/shared"; fi
  echo "== shared data $setting (clone $base/sgdtemp)"
  echo -n "   unmutated: "
  if ! run_tests "$base/sgdtemp" "$setting"; then echo "   the unmutated clone fails"; status=1; fi
  for m in "${MUTANTS[@]}"; do
    IFS='|' read -r name file expr <<<"$m"
    (cd "$base/sgdtemp" && git checkout -q -- . && sed -i "$expr" "$file")
    if (cd "$base/sgdtemp" && git diff --quiet); then
      echo "   $name: the mutation no longer applies (source changed?)"; status=1; continue
    fi
    echo -n "   $name: "
    run_tests "$base/sgdtemp" "$setting"
    case $? in  # 1: some test failed; 0: none did; else pytest itself failed
      1) ;;
      0) echo "   NOT CAUGHT"; status=1 ;;
      *) echo "   pytest did not run properly"; status=1 ;;
    esac
  done
  # Every result-changing option, one at a time, added to the entries the key ignores.
  options=$(cd "$base/sgdtemp" && PYTHONPATH=src "$PY" -c \
    'from sgdtemp.train import CONFIG_KEYS; print(*[k for k in CONFIG_KEYS if k != "data_dir"])')
  caught=0 missed=""
  for opt in $options; do
    (cd "$base/sgdtemp" && git checkout -q -- . && sed -i \
      "s/LOCATION_KEYS = frozenset({\"data_dir\"})/LOCATION_KEYS = frozenset({\"data_dir\", \"$opt\"})/" \
      src/sgdtemp/store.py)
    (cd "$base/sgdtemp" && env -u PYTHONPATH PYTHONPATH=src nice -n 10 "$PY" -m pytest -q -x \
        -p no:randomly tests/test_store_keys.py >/dev/null 2>&1)
    if [ $? -eq 1 ]; then caught=$((caught + 1)); else missed="$missed $opt"; fi
  done
  echo "   store key ignores one option: caught for $caught of $(echo $options | wc -w) options${missed:+; NOT caught:$missed}"
  [ -z "$missed" ] || status=1
  (cd "$base/sgdtemp" && git checkout -q -- .)
done
exit $status
