#!/bin/sh
# RAUC bundle hook for gateway rootfs updates that carry gatewatch.
#   install-check      refuse the bundle if the agent's state would not survive the update
#                      (its state directory must be on a data partition, not on the rootfs)
#   slot-post-install  carry the operator's configuration into the new rootfs slot
# Commit or rollback happens after the reboot into the new slot: gatewatch-rauc-health.service
# runs `gatewatch check --health` and marks the slot good, or bad (and reboots into the old one).
set -eu

CONFIG="@CONFIG_PATH@"
STATE_DIR="@STATE_DIR@"

log() { echo "gatewatch rauc hook: $*" >&2; }

install_check() {
	if [ "${RAUC_MF_COMPATIBLE:-}" != "${RAUC_SYSTEM_COMPATIBLE:-}" ]; then
		echo "bundle is for '${RAUC_MF_COMPATIBLE:-}', this system is '${RAUC_SYSTEM_COMPATIBLE:-}'"
		exit 10
	fi
	# The agent's identity (client.keys) and unsent events live in the state directory: a
	# rootfs update would erase them unless it is on another filesystem.
	if [ -d "$STATE_DIR" ] && [ "$(stat -c %d "$STATE_DIR")" = "$(stat -c %d /)" ]; then
		echo "$STATE_DIR is on the root filesystem: the agent's identity and spool would be lost; mount the data partition there first"
		exit 10
	fi
}

slot_post_install() {
	[ "${RAUC_SLOT_CLASS:-}" = rootfs ] || return 0
	# The running configuration (manager address, pinned CA path) wins over the image default.
	if [ -f "$CONFIG" ] && [ -d "$RAUC_SLOT_MOUNT_POINT$(dirname "$CONFIG")" ]; then
		cp -p "$CONFIG" "$RAUC_SLOT_MOUNT_POINT$CONFIG"
		log "kept $CONFIG in the new slot"
	fi
}

case "${1:-}" in
	install-check) install_check ;;
	slot-post-install) slot_post_install ;;
	*) exit 0 ;;
esac
