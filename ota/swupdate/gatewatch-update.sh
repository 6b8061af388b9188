#!/bin/sh
# SWUpdate script of a gatewatch bundle: `preinst` before the files are written, `postinst` after.
# postinst moves the staged binary and configuration into place, restarts the agent and asks it
# `gatewatch check --health`: exit 0 commits the update, anything else restores the previous
# binary and configuration (and SWUpdate reports the update as failed).
# Values between @ signs are filled in by scripts/ota-bundle.sh.
set -eu

STAGE_DIR="@STAGE_DIR@"
BIN="@PREFIX@/bin/gatewatch"
CONFIG="@CONFIG_PATH@"
WITHIN="@HEALTH_WITHIN@"
BACKUP="$STAGE_DIR/previous"

log() { echo "gatewatch-update: $*" >&2; }

restart_agent() {
	if command -v systemctl >/dev/null 2>&1; then
		systemctl restart gatewatch.service
	elif [ -x /etc/init.d/gatewatch ]; then
		/etc/init.d/gatewatch restart
	else
		log "no systemctl and no /etc/init.d/gatewatch: cannot restart the agent"
		return 1
	fi
}

# Replaces $2 by $1 atomically (a copy beside the target, then rename).
replace() {
	cp -f "$1" "$2.new"
	chmod "$3" "$2.new"
	mv -f "$2.new" "$2"
}

preinst() {
	# A leftover of an interrupted update must not be taken for this one.
	rm -rf "$STAGE_DIR"
	mkdir -p "$STAGE_DIR"
	chmod 0700 "$STAGE_DIR"
}

rollback() {
	log "rolling back: $1"
	[ -f "$BACKUP/gatewatch" ] && replace "$BACKUP/gatewatch" "$BIN" 0755
	[ -f "$BACKUP/agent.toml" ] && replace "$BACKUP/agent.toml" "$CONFIG" 0600
	restart_agent || log "the previous agent did not restart"
	exit 1
}

postinst() {
	# Refuse a binary that cannot run here (wrong architecture) or a configuration it rejects,
	# before anything is replaced.
	chmod 0755 "$STAGE_DIR/gatewatch"
	"$STAGE_DIR/gatewatch" version >/dev/null 2>&1 ||
		{ log "the new binary does not run on this device"; exit 1; }
	"$STAGE_DIR/gatewatch" check-config --config "$STAGE_DIR/agent.toml" >&2 ||
		{ log "the new binary rejects the bundled configuration"; exit 1; }

	mkdir -p "$BACKUP" "$(dirname "$CONFIG")"
	[ -f "$BIN" ] && cp -f "$BIN" "$BACKUP/gatewatch"
	[ -f "$CONFIG" ] && cp -f "$CONFIG" "$BACKUP/agent.toml"

	replace "$STAGE_DIR/gatewatch" "$BIN" 0755 || rollback "cannot install $BIN"
	replace "$STAGE_DIR/agent.toml" "$CONFIG" 0600 || rollback "cannot install $CONFIG"
	restart_agent || rollback "the new agent did not start"

	# The health gate: valid configuration, enrolled, and connected to its manager in time.
	if "$BIN" check --health --within "$WITHIN" --config "$CONFIG" >&2; then
		log "healthy: update committed"
		rm -rf "$STAGE_DIR"
	else
		rollback "the new agent is not healthy within ${WITHIN} s"
	fi
}

case "${1:-}" in
	preinst) preinst ;;
	postinst) postinst ;;
	postfailure) log "update failed before postinst; nothing was replaced" ;;
	*) log "unknown step '${1:-}'"; exit 1 ;;
esac
