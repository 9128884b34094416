package azure_test

import (
	"testing"

	"github.com/azinit/azinit/datasource/azure"
)

// BenchmarkGoalStateCertificates is the wireserver half of provisioning:
// versions, goal state, hosting environment, shared config and the
// certificates (fetched, CMS-decrypted, PKCS#12-decoded, paired) from the
// fabric on loopback, with the transport key already on disk.
func BenchmarkGoalStateCertificates(b *testing.B) {
	_, o, _ := setup(b)
	o.HTTP = nil // the production client
	for b.Loop() {
		d := &azure.Data{}
		err := d.Fetch(b.Context(), o, azure.Wireserver)
		if err != nil || len(d.Certificates) != 1 {
			b.Fatalf("%v, %d certificates", err, len(d.Certificates))
		}
	}
}
