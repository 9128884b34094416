"""Drives the Debian cloud-init package's Azure datasource against azinit-fabric.

Run inside a loopback-only network namespace with the fabric's wireserver on
127.0.0.1:80 (cloud-init hard-codes the port). argv: CLOUD_DIR IMDS_HOSTPORT
VM_UUID. The provisioning media is the seed dir <CLOUD_DIR>/seed/azure, which
the caller fills with the fabric's ovf-env.xml. Only crawl_metadata() runs:
it reads the OVF, fetches IMDS, and reports ready (goal state + health),
without the datasource's later steps that would touch the host system.
Prints one JSON summary on stdout.
"""
import json
import sys

CLOUD_DIR, IMDS_HOSTPORT, VM_UUID = sys.argv[1], sys.argv[2], sys.argv[3]

from cloudinit import distros, dmi, helpers
from cloudinit.sources import DataSourceAzure as dsaz


class StubDHCP:
    """Stands in for dhclient: a lease naming the fabric as wireserver."""

    def __init__(self):
        self.iface = "lo"
        self.lease = {"interface": "lo", "unknown-245": "7f:00:00:01"}

    def clean_network(self):
        pass


def setup_ephemeral_networking(self, **_kwargs):
    self._ephemeral_dhcp_ctx = StubDHCP()
    self._wireserver_endpoint = dsaz.get_ip_from_lease_value(self._ephemeral_dhcp_ctx.lease["unknown-245"])


real_readurl = dsaz.readurl


def readurl(url, *args, **kwargs):
    return real_readurl(url.replace("169.254.169.254", IMDS_HOSTPORT), *args, **kwargs)


def read_dmi_data(key):
    return {"system-uuid": VM_UUID, "chassis-asset-tag": "7783-7084-3265-9085-8269-3286-77"}.get(key)


# Never mount or probe the host's block devices: the seed dir is the media.
dsaz.list_possible_azure_ds = lambda seed, cache_dir: [seed]
dsaz.DataSourceAzure._setup_ephemeral_networking = setup_ephemeral_networking
dsaz.readurl = readurl
dmi.read_dmi_data = read_dmi_data

paths = helpers.Paths({"cloud_dir": CLOUD_DIR, "run_dir": CLOUD_DIR + "/run"})
sys_cfg = {"datasource": {"Azure": {"data_dir": CLOUD_DIR + "/waagent"}}}
distro = distros.fetch("debian")("debian", {}, paths)
ds = dsaz.DataSourceAzure(sys_cfg, distro, paths)

crawled = ds.crawl_metadata()
md = crawled["metadata"]
json.dump({
    "local_hostname": md.get("local-hostname"),
    "instance_id": md.get("instance-id"),
    "imds_vm_id": md.get("imds", {}).get("compute", {}).get("vmId"),
    "default_user": crawled["cfg"]["system_info"]["default_user"]["name"],
    "negotiated": ds._negotiated,
}, sys.stdout, sort_keys=True)
