"""Drives the Debian waagent package's own protocol code against azinit-fabric.

Run inside a loopback-only network namespace with the fabric's wireserver on
127.0.0.1:80 and its HostGAPlugin on 127.0.0.1:32526 (WALinuxAgent hard-codes
both ports). argv: LIB_DIR IMDS_HOSTPORT. Prints one JSON summary on stdout;
any protocol failure raises and exits non-zero.
"""
import json
import os
import sys

LIB_DIR, IMDS_HOSTPORT = sys.argv[1], sys.argv[2]

from azurelinuxagent.common import conf
from azurelinuxagent.common.protocol import imds
from azurelinuxagent.common.protocol.restapi import ProvisionStatus, VMStatus
from azurelinuxagent.common.protocol.wire import WireProtocol

conf_path = os.path.join(LIB_DIR, "waagent.conf")
with open(conf_path, "w") as f:
    f.write("Lib.Dir={0}\nOS.OpensslPath=/usr/bin/openssl\nExtension.LogDir={0}/log\n"
            "Debug.EnableFastTrack=y\n".format(LIB_DIR))
conf.load_conf_from_file(conf_path)

summary = {}
protocol = WireProtocol("127.0.0.1")
# versions, transport certificate (openssl), goal state and its documents,
# certificates (openssl cms -decrypt of the fabric's envelope, pkcs12).
protocol.detect()
client = protocol.client
gs = client.get_goal_state()
summary["incarnation"] = gs.incarnation
summary["container_id"] = gs.container_id
summary["role_instance_id"] = gs.role_instance_id

vminfo = protocol.get_vminfo()
summary["vm_name"] = vminfo.vmName
summary["role_name"] = vminfo.roleName
summary["deployment_name"] = vminfo.tenantName
summary["shared_config_bytes"] = len(client.get_shared_conf().xml_text)

certs = []
for c in protocol.get_certs().certificates:
    certs.append({
        "thumbprint": c.thumbprint,
        "has_private_key": os.path.exists(os.path.join(LIB_DIR, c.thumbprint + ".prv")),
    })
summary["certificates"] = sorted(certs, key=lambda c: c["thumbprint"])

egs = client.get_extensions_goal_state()
summary["status_upload_blob_type"] = egs.status_upload_blob_type

# Health: the provisioning handler's two reports.
protocol.report_provision_status(ProvisionStatus(status="NotReady", subStatus="Provisioning", description="Starting"))
protocol.report_provision_status(ProvisionStatus(status="Ready"))
summary["health"] = "sent"

# Status blob: through HostGAPlugin /status, then the direct blob PUT.
protocol.report_vm_status(VMStatus(status="Ready", message="Guest Agent is running"))
summary["status_hostgaplugin"] = "sent"
client.status_blob.prepare(egs.status_upload_blob_type)
if not client.status_blob.upload(egs.status_upload_blob):
    raise RuntimeError("direct status blob upload failed")
summary["status_direct"] = "sent"

# IMDS, with the module's endpoint pointed at the fabric.
imds.IMDS_ENDPOINT = IMDS_HOSTPORT
compute = imds.get_imds_client("127.0.0.1").get_compute()
summary["imds"] = {"name": compute.name, "location": compute.location, "vmSize": compute.vmSize}

json.dump(summary, sys.stdout, sort_keys=True)
