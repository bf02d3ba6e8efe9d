#!/usr/bin/env bash
# make matrix: make check on every supported release, one after the other:
# Debian's 7.2 (kernel/debug72.config, the oldest, through the compat layer)
# and 7.3 (kernel/debug.config). Each builds its own debug kernel (cached like
# the 7.3 one) and boots it; logs in build/matrix/<release>/. Ends with one
# line per release and fails if either does.
. "$(dirname "$0")/common.sh"

rc=0
summary=()
for entry in "7.2 debug72" "7.3 debug"; do
	set -- $entry
	release=$1 flavour=$2
	log "matrix: Linux $release ($flavour kernel)"
	if FLAVOUR=$flavour CHECK_OUT="$TOPDIR/build/matrix/$release" "$TOPDIR/scripts/check.sh" |
		tee "$TOPDIR/build/matrix-$release.log"; then
		verdict=ok
	else
		verdict=FAILED rc=1
	fi
	summary+=("Linux $release: $verdict, $(tail -1 "$TOPDIR/build/matrix-$release.log")")
done
echo
for line in "${summary[@]}"; do echo "matrix: $line"; done
exit $rc
