package fabric

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kdomanski/iso9660"

	"github.com/azinit/azinit/datasource/azure/ovf"
	"github.com/azinit/azinit/internal/udf"
)

// MediaFormat is the file system of provisioning media.
type MediaFormat string

// The media formats: Azure attaches UDF; ISO9660 is what Azure Stack and
// older tools use.
const (
	MediaUDF     MediaFormat = "udf"
	MediaISO9660 MediaFormat = "iso9660"
)

// mediaLabel is the volume label of the provisioning media.
const mediaLabel = "CDROM"

// WriteMedia writes provisioning media holding the scenario's ovf-env.xml
// to w. On ISO9660 the file is recorded as "ovf-env.xml;1" (plain
// ISO9660, no Rock Ridge or Joliet); readers drop the ";1".
func WriteMedia(w io.Writer, scenarioDir string, format MediaFormat) error {
	name := filepath.Join(scenarioDir, "ovf-env.xml")
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("scenario %s: %w", scenarioDir, err)
	}
	if _, err := ovf.Parse(b); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	switch format {
	case MediaUDF, "":
		if err := udf.Write(w, mediaLabel, []udf.File{{Name: "ovf-env.xml", Data: b}}, udf.WriteOptions{}); err != nil {
			return fmt.Errorf("writing UDF media: %w", err)
		}
		return nil
	case MediaISO9660:
		return writeISO(w, b)
	}
	return fmt.Errorf("media format %q: want %s or %s", format, MediaUDF, MediaISO9660)
}

func writeISO(w io.Writer, ovfEnv []byte) error {
	iw, err := iso9660.NewWriter()
	if err != nil {
		return fmt.Errorf("writing ISO9660 media: %w", err)
	}
	defer iw.Cleanup()
	if err := iw.AddFile(bytes.NewReader(ovfEnv), "ovf-env.xml"); err != nil {
		return fmt.Errorf("writing ISO9660 media: %w", err)
	}
	if err := iw.WriteTo(w, mediaLabel); err != nil {
		return fmt.Errorf("writing ISO9660 media: %w", err)
	}
	return nil
}

// WriteMediaFile writes provisioning media to the file out atomically,
// readable only by its owner: ovf-env.xml holds the admin password.
func WriteMediaFile(out, scenarioDir string, format MediaFormat) error {
	var b bytes.Buffer
	if err := WriteMedia(&b, scenarioDir, format); err != nil {
		return err
	}
	return writeFileAtomic(out, b.Bytes(), 0o600)
}
