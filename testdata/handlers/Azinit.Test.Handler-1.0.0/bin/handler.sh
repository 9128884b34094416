#!/bin/sh
# The azinit test extension handler: handler.sh install|uninstall|update|enable|disable.
#
# It finds its files as real handlers do (HandlerEnvironment.json in the
# working directory, ConfigSequenceNumber and ConfigExtensionName from the
# environment), appends one line per operation to logFolder/operations.log
# and writes statusFolder/[<ext>.]<seq>.status. Public settings steer it with
# flat keys: "<op>Sleep" (seconds), "<op>Status" (the status to report),
# "<op>Exit" (its exit code). Its name and version are those of its
# directory, <Name>-<Version>, so every version is this same script.
# POSIX sh, coreutils and openssl only.
set -u

op=${1:-}
case $op in
install | uninstall | update | enable | disable) ;;
*)
	echo "usage: $0 install|uninstall|update|enable|disable" >&2
	exit 2
	;;
esac

base=$(basename "$PWD")
name=${base%-*}
version=${base##*-}
seq=${ConfigSequenceNumber:-0}
ext=${ConfigExtensionName:-}
prefix=
[ -n "$ext" ] && prefix="$ext."

# value KEY FILE: the JSON string value of "KEY": "value" in FILE.
value() {
	sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$2" 2>/dev/null
}

# number KEY FILE: the JSON number (integer) value of "KEY": N in FILE.
number() {
	sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$2" 2>/dev/null
}

if [ ! -f HandlerEnvironment.json ]; then
	echo "$name: no HandlerEnvironment.json in $PWD" >&2
	exit 1
fi
log_dir=$(value logFolder HandlerEnvironment.json)
config_dir=$(value configFolder HandlerEnvironment.json)
status_dir=$(value statusFolder HandlerEnvironment.json)
if [ -z "$log_dir" ] || [ -z "$config_dir" ] || [ -z "$status_dir" ]; then
	echo "$name: HandlerEnvironment.json lacks logFolder, configFolder or statusFolder" >&2
	exit 1
fi
settings="$config_dir/$prefix$seq.settings"

mkdir -p "$log_dir"
printf '%s version=%s seq=%s ext=%s uninstall_exit=%s from=%s\n' "$op" "$version" "$seq" "${ext:--}" \
	"${AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE:-}" "${AZURE_GUEST_AGENT_UPDATING_FROM_VERSION:-}" \
	>>"$log_dir/operations.log"
# The control group each operation ran in and its limits: a boot test
# checks the systemd scope and the manifest's resourceLimits.
cgroup=$(sed -n 's/^0:://p' /proc/self/cgroup 2>/dev/null)
printf '%s cgroup=%s cpu.max=%s memory.max=%s\n' "$op" "$cgroup" \
	"$(cat "/sys/fs/cgroup$cgroup/cpu.max" 2>/dev/null)" "$(cat "/sys/fs/cgroup$cgroup/memory.max" 2>/dev/null)" \
	>>"$log_dir/cgroup.log"

sleep_s=$(number "${op}Sleep" "$settings")
exit_code=$(number "${op}Exit" "$settings")
status=$(value "${op}Status" "$settings")
[ -n "$sleep_s" ] && sleep "$sleep_s"

# protected_sha256: the SHA-256 of the decrypted protected settings, never
# the settings themselves; empty when there are none, "!" when they do not
# decrypt. The certificate and key are in the agent's directory, two up
# from configFolder.
protected_sha256() {
	blob=$(value protectedSettings "$settings")
	[ -n "$blob" ] || return 0
	tp=$(value protectedSettingsCertThumbprint "$settings")
	der=$(mktemp "$config_dir/.protected.XXXXXX") || {
		echo "!"
		return 0
	}
	printf '%s' "$blob" | openssl base64 -d -A >"$der" 2>/dev/null
	crt="$config_dir/../../$tp.crt"
	prv="$config_dir/../../$tp.prv"
	if plain=$(openssl smime -decrypt -inform DER -in "$der" -recip "$crt" -inkey "$prv" 2>/dev/null) ||
		plain=$(openssl cms -decrypt -inform DER -in "$der" -recip "$crt" -inkey "$prv" 2>/dev/null); then
		printf '%s' "$plain" | sha256sum | cut -d ' ' -f 1
	else
		echo "!"
	fi
	rm -f "$der"
}

write_status() {
	code=0
	message="$op: $(value message "$settings" | tr -d '\\"')"
	sum=$(protected_sha256)
	case $sum in
	"") ;;
	"!")
		status=error code=1
		message="$message; the protected settings do not decrypt with the certificate they name (openssl smime and cms failed)"
		;;
	*) message="$message protected-sha256=$sum" ;;
	esac
	case $op in
	install) operation=Install ;;
	uninstall) operation=Uninstall ;;
	update) operation=Update ;;
	enable) operation=Enable ;;
	disable) operation=Disable ;;
	esac
	mkdir -p "$status_dir"
	tmp="$status_dir/.$prefix$seq.status.$$"
	printf '[{"version": 1.0, "timestampUTC": "%s", "status": {"name": "%s", "operation": "%s", "status": "%s", "code": %s, "formattedMessage": {"lang": "en-US", "message": "%s"}}}]\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "$operation" "${status:-success}" "$code" "$message" >"$tmp" &&
		mv -f "$tmp" "$status_dir/$prefix$seq.status"
}

if [ "$op" = enable ] || [ -n "$status" ] || { [ "$op" != install ] && [ -f "$settings" ]; }; then
	write_status
fi
[ "$op" = enable ] && printf '%s\n' "$seq" >mrseq
exit "${exit_code:-0}"
