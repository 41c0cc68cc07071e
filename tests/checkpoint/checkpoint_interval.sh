# Shared by the tests/checkpoint scripts (sourced): the interval of their time-based runs.
# checkpoint_interval EPOCH_SECONDS FLOOR prints max(FLOOR, 0.3 x EPOCH_SECONDS), EPOCH_SECONDS
# being one epoch's train_seconds: a tenth of a three-epoch run's expected training time, so that
# run writes several checkpoints at any speed (a fixed interval wrote one per step under ASan and
# one or none on a loaded machine).
checkpoint_interval() {
  /usr/bin/python3 -c 'import sys; print(max(float(sys.argv[2]), 0.3 * float(sys.argv[1])))' "$1" "$2"
}
