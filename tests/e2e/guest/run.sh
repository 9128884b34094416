#!/bin/sh
# Runs in the guest (e2e-runner.service) from the host's share, /run/e2e:
# waits for the boot to settle and for the host's go-ahead, then leaves
# what the test checks in /run/e2e/out. The VM powers off afterwards.
umask 077
share=/run/e2e
out=$share/out
mkdir -p "$out"
agent=$(cat "$share/agent")

if [ "$agent" = azinit ]; then
	timeout 240 azinit status --wait --format json >"$out/status.json" 2>"$out/status.err"
	echo $? >"$out/status.rc"
fi

# The host creates "collect" once the fabric saw what the scenario waits
# for (Ready, a status upload); the guest gives up after 3 minutes.
i=0
while [ ! -e "$share/collect" ] && [ $i -lt 360 ]; do
	sleep 0.5
	i=$((i + 1))
done

# Monotonic and wall-clock journal, and the clocks at one instant, so
# WALinuxAgent's wall-clock log lines can be placed on the boot's time line.
journalctl -b -o short-monotonic --no-pager >"$out/journal.txt" 2>&1
printf '%s %s\n' "$(cut -d ' ' -f 1 /proc/uptime)" "$(date +%s.%N)" >"$out/clock.txt"
hostname >"$out/hostname"
id azureuser >"$out/id" 2>&1
passwd -S azureuser >"$out/passwd-status" 2>&1
for unit in azinit-local azinit-network azinit-config azinit-final azinit-extensions ssh \
	walinuxagent cloud-init-local; do
	systemctl show -p LoadState,ActiveState,SubState,Result,ConditionResult,NRestarts,ExecMainStatus,UnitFileState \
		"$unit.service" >"$out/unit-$unit.txt" 2>&1
done
systemctl list-units --all --no-pager --plain --no-legend >"$out/units.txt" 2>&1
systemctl --failed --no-pager --plain --no-legend >"$out/failed.txt" 2>&1
ls -la /etc/ssh /var/lib/waagent >"$out/ls.txt" 2>&1
tar -cf "$out/files.tar" --ignore-failed-read \
	/etc/hostname /etc/hosts /etc/sudoers.d /etc/ssh /home/azureuser/.ssh \
	/run/azinit /var/lib/azinit /var/lib/waagent /var/log/azinit.log /var/log/azure /var/log/waagent.log \
	2>"$out/tar.err"
sync
